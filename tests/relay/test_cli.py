"""The crdtsync command line: token, inspect, relay option checks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from click.testing import CliRunner
from pycrdt import Doc, Map, Text

from crdtsync.cli import main
from crdtsync.relay import Access, verify_token
from crdtsync.storage import SQLiteStore

SECRET = "0123456789abcdef-secret"


def test_token_command_mints_a_verifiable_token() -> None:
    result = CliRunner().invoke(
        main, ["token", "--secret", SECRET, "-s", "ana", "--write", "notes/*", "--read", "*", "--ttl", "60"]
    )
    assert result.exit_code == 0, result.output
    claims = verify_token(SECRET.encode(), result.output.strip(), now=time.time())
    assert claims.subject == "ana"
    assert claims.access("notes/x") is Access.WRITE and claims.access("x") is Access.READ
    assert CliRunner().invoke(main, ["token", "--secret", SECRET]).exit_code != 0


def test_token_secret_from_environment() -> None:
    result = CliRunner().invoke(main, ["token", "--write", "*"], env={"CRDTSYNC_SECRET": SECRET})
    assert result.exit_code == 0
    verify_token(SECRET.encode(), result.output.strip(), now=time.time())


def test_inspect_prints_size_history_and_content(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def fill() -> None:
        store = SQLiteStore(path)
        doc: Doc = Doc()
        ups: list[bytes] = []
        doc.observe(lambda ev: ups.append(bytes(ev.update)))
        doc.get("m", type=Map)["title"] = "Grüße"
        doc.get("t", type=Text).insert(0, "hello")
        for u in ups:
            await store.append("notes/1", u)
        await store.close()

    asyncio.run(fill())
    result = CliRunner().invoke(main, ["inspect", str(path), "notes/1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["log_updates"] == 2
    assert report["stored_bytes"] > 0 and report["encoded_bytes"] > 0
    assert report["content"] == {"m": {"title": "Grüße"}, "t": "hello"}
    listing = json.loads(CliRunner().invoke(main, ["inspect", str(path)]).output)
    assert [d["doc_id"] for d in listing["documents"]] == ["notes/1"]
    assert CliRunner().invoke(main, ["inspect", str(path), "missing"]).exit_code != 0
    assert CliRunner().invoke(main, ["inspect", str(tmp_path / "nope.db")]).exit_code != 0


def test_relay_refuses_public_bind_without_secret() -> None:
    result = CliRunner().invoke(main, ["relay", "--host", "0.0.0.0", "--store", "memory:"], env={})
    assert result.exit_code != 0
    assert "secret" in result.output


def test_relay_rejects_bad_limits() -> None:
    result = CliRunner().invoke(main, ["relay", "--store", "memory:", "--flush-delay", "5"])
    assert result.exit_code != 0


def test_every_new_limit_flag_is_validated() -> None:
    for flag, field in (("--max-held-bytes", "max_held_bytes"), ("--awareness-max-registry", "max_registry_clients"),
                        ("--awareness-max-clients", "max_clients"), ("--write-buffer", "write_buffer")):
        result = CliRunner().invoke(main, ["relay", "--store", "memory:", flag, "0"])
        assert result.exit_code == 2 and f"{field} must be" in result.output, flag
