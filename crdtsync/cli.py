"""The ``crdtsync`` command: ``relay`` (run the service), ``inspect`` (look into a store),
``token`` (mint an access token). Run ``crdtsync COMMAND --help`` for the options."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

try:
    import click
except ImportError:  # pragma: no cover - the [relay] extra is missing
    sys.stderr.write("crdtsync's command line needs the [relay] extra: pip install 'crdtsync[relay]'\n")
    raise SystemExit(2) from None

from .errors import CrdtsyncError

SECRET_ENV = "CRDTSYNC_SECRET"


@click.group()
@click.version_option(package_name="crdtsync")
def main() -> None:
    """crdtsync: CRDT-backed server-state cache and sync relay."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="TCP port (0: any free port).")
@click.option(
    "--store", "store_spec", default="./crdtsync.sqlite3", show_default=True,
    help="SQLite file path, or 'memory:' to keep nothing.",
)
@click.option("--secret", envvar=SECRET_ENV, default=None, help=f"Token HMAC secret (or ${SECRET_ENV}).")
@click.option("--allow-anonymous", is_flag=True, help="Serve without a secret on a non-loopback bind.")
@click.option("--native-path", default="/v1", show_default=True, help="URL path of the native protocol.")
@click.option("--max-message-size", default=4 << 20, show_default=True, type=int)
@click.option("--max-queue", default=4096, show_default=True, type=int, help="Outgoing messages per connection.")
@click.option("--rate", default=2000.0, show_default=True, type=float,
              help="Messages/s per connection; above it the relay reads more slowly (nothing is dropped).")
@click.option("--burst", default=4000, show_default=True, type=int, help="Messages a connection may send at once.")
@click.option("--max-throttle", default=60.0, show_default=True, type=float,
              help="Seconds a connection may be held back by --rate without a break before it is closed (0: never).")
@click.option("--max-rooms", default=10_000, show_default=True, type=int)
@click.option("--max-connections", default=10_000, show_default=True, type=int)
@click.option("--max-subscriptions", default=1000, show_default=True, type=int)
@click.option("--max-held-bytes", default=8 << 20, show_default=True, type=int,
              help="Bytes held per connection for documents still loading; past it the relay stops reading.")
@click.option("--write-buffer", default=64 << 10, show_default=True, type=int,
              help="Socket buffer above which frames queue (see --max-queue).")
@click.option("--awareness-max-bytes", default=64 << 10, show_default=True, type=int)
@click.option("--awareness-max-depth", default=32, show_default=True, type=int)
@click.option("--awareness-max-clients", default=1024, show_default=True, type=int,
              help="Client states in one awareness message.")
@click.option("--awareness-max-registry", default=10_000, show_default=True, type=int,
              help="Client states (and removal markers) a room keeps.")
@click.option("--reader-presence/--no-reader-presence", default=True, show_default=True,
              help="Whether read-only connections may publish presence (their own client ids only).")
@click.option("--awareness-timeout", default=30.0, show_default=True, type=float,
              help="Seconds an awareness state lives without renewal.")
@click.option("--load-timeout", default=30.0, show_default=True, type=float, help="Seconds before a load fails.")
@click.option("--ping-interval", default=30.0, show_default=True, type=float, help="Keepalive ping (0: off).")
@click.option("--shutdown-timeout", default=30.0, show_default=True, type=float,
              help="Seconds SIGTERM waits for rooms to flush.")
@click.option("--idle-unload", default=30.0, show_default=True, type=float, help="Seconds before an idle room unloads.")
@click.option("--flush-delay", default=0.2, show_default=True, type=float, help="y-websocket durability (<= 1 s).")
@click.option("--compact-updates", default=500, show_default=True, type=int, help="Compact a log past N updates.")
@click.option("--compact-bytes", default=1 << 20, show_default=True, type=int, help="...or past K bytes.")
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--loop", "loop_kind", default="auto", show_default=True, type=click.Choice(["auto", "uvloop", "asyncio"]),
    help="Event loop: auto uses uvloop when installed.",
)
def relay(**opts: Any) -> None:
    """Run the relay: native protocol at --native-path, y-websocket at /<room>, /healthz, /metrics."""
    from .protocol.awareness import AwarenessLimits
    from .relay import Relay, RelayConfig
    from .relay.logs import configure_logging
    from .storage import CompactionPolicy, open_store

    configure_logging(opts["log_level"])
    secret = opts["secret"]
    try:
        config = RelayConfig(
            host=opts["host"],
            port=opts["port"],
            native_path=opts["native_path"],
            secret=secret.encode("utf-8") if secret else None,
            allow_anonymous=opts["allow_anonymous"],
            max_message_size=opts["max_message_size"],
            max_queue=opts["max_queue"],
            rate=opts["rate"],
            burst=opts["burst"],
            max_throttle=opts["max_throttle"] or None,
            max_rooms=opts["max_rooms"],
            max_connections=opts["max_connections"],
            max_subscriptions=opts["max_subscriptions"],
            max_held_bytes=opts["max_held_bytes"],
            write_buffer=opts["write_buffer"],
            awareness=AwarenessLimits(
                max_payload_bytes=opts["awareness_max_bytes"],
                max_depth=opts["awareness_max_depth"],
                max_clients=opts["awareness_max_clients"],
                max_registry_clients=opts["awareness_max_registry"],
            ),
            awareness_timeout=opts["awareness_timeout"],
            reader_presence=opts["reader_presence"],
            idle_unload=opts["idle_unload"],
            flush_delay=opts["flush_delay"],
            load_timeout=opts["load_timeout"],
            ping_interval=opts["ping_interval"] or None,
            shutdown_timeout=opts["shutdown_timeout"],
        )
        config.check_bind()
        policy = CompactionPolicy(max_log_updates=opts["compact_updates"], max_log_bytes=opts["compact_bytes"])
    except (ValueError, CrdtsyncError) as exc:
        raise click.UsageError(str(exc)) from exc

    async def run() -> None:
        try:
            store = open_store(opts["store_spec"], policy=policy)
        except CrdtsyncError as exc:
            raise click.ClickException(str(exc)) from exc
        await Relay(config, store).serve_forever()

    from .relay.loop import loop_factory, run_relay_loop

    try:
        loop_name = loop_factory(opts["loop_kind"])[1]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    logging.getLogger("crdtsync.relay").info("event loop", extra={"fields": {"loop": loop_name}})
    try:
        run_relay_loop(run, opts["loop_kind"])
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {opts['host']}:{opts['port']}: {exc}") from exc


def _doc_content(state: bytes) -> dict[str, Any]:
    """Best-effort plain view of every root type the state names. Yjs updates do not record
    a root's type, so it is guessed: keyed entries -> map, characters -> text, else array."""
    from pycrdt import Array, Doc, Map, Text

    def fresh() -> Doc:  # type: ignore[type-arg]
        doc: Doc = Doc()  # type: ignore[type-arg]
        doc.apply_update(state)
        return doc

    out: dict[str, Any] = {}
    for name in list(fresh().keys()):
        as_map = fresh().get(name, type=Map).to_py()
        if as_map:
            out[name] = as_map
            continue
        as_text = str(fresh().get(name, type=Text))
        out[name] = as_text if as_text else fresh().get(name, type=Array).to_py()
    return out


@main.command()
@click.argument("store_path")
@click.argument("doc_id", required=False)
@click.option("--content/--no-content", default=True, help="Print the document's content.")
def inspect(store_path: str, doc_id: str | None, content: bool) -> None:
    """Print a stored document's size, history length and content (or list documents)."""
    from .storage import SQLiteStore, merge

    if not os.path.exists(store_path):
        raise click.ClickException(f"no such store: {store_path}")

    async def run() -> dict[str, Any]:
        store = SQLiteStore(store_path)
        try:
            if doc_id is None:
                docs = []
                for d in await store.list_docs():
                    st = await store.stat(d)
                    docs.append({"doc_id": d, "bytes": st.total_bytes if st else 0})
                return {"store": store_path, "file_bytes": store.total_size(), "documents": docs}
            st = await store.stat(doc_id)
            if st is None:
                raise click.ClickException(f"no document {doc_id!r} in {store_path}")
            report: dict[str, Any] = {
                "doc_id": doc_id,
                "snapshot_bytes": st.snapshot_bytes,
                "log_updates": st.log_updates,
                "log_bytes": st.log_bytes,
                "stored_bytes": st.total_bytes,
            }
            try:
                state = await store.load(doc_id)
            except CrdtsyncError as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
                return report
            assert state is not None
            report["encoded_bytes"] = len(merge([state]))
            if content:
                report["content"] = _doc_content(state)
            return report
        finally:
            await store.close()

    try:
        result = asyncio.run(run())
    except CrdtsyncError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))


@main.command()
@click.option("--secret", envvar=SECRET_ENV, required=True, help=f"HMAC secret (or ${SECRET_ENV}).")
@click.option("--subject", "-s", default="user", show_default=True)
@click.option("--read", "reads", multiple=True, help="Doc id glob granted read access (repeatable).")
@click.option("--write", "writes", multiple=True, help="Doc id glob granted read-write access (repeatable).")
@click.option("--ttl", default=3600.0, show_default=True, type=float, help="Seconds until expiry.")
def token(secret: str, subject: str, reads: tuple[str, ...], writes: tuple[str, ...], ttl: float) -> None:
    """Mint an access token for the relay (pass it in Hello or as ?token=)."""
    from .relay.auth import mint_token

    grants = [(p, "read") for p in reads] + [(p, "write") for p in writes]
    if not grants:
        raise click.UsageError("grant something: --read PATTERN and/or --write PATTERN")
    click.echo(mint_token(secret.encode("utf-8"), subject, grants, expires=time.time() + ttl))


if __name__ == "__main__":  # pragma: no cover
    main()
