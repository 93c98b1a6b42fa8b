"""The pgoutput decoder: hand-built messages (every type, NULL / unchanged TOAST / text /
binary columns, both old-tuple kinds), malformed input as PgOutputError, and the messages a
real server sends for INSERT, UPDATE, DELETE and TRUNCATE under REPLICA IDENTITY DEFAULT and
FULL."""

from __future__ import annotations

import contextlib
import struct
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.errors import PgOutputError
from crdtsync.postgres import pgoutput as pg


def _s(text: str) -> bytes:
    return text.encode() + b"\x00"


def _tuple(values: list[str | bytes | object | None]) -> bytes:
    out = struct.pack("!h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v is pg.UNCHANGED:
            out += b"u"
        elif isinstance(v, str):
            out += b"t" + struct.pack("!i", len(v.encode())) + v.encode()
        else:
            assert isinstance(v, bytes)
            out += b"b" + struct.pack("!i", len(v)) + v
    return out


def test_begin_and_commit() -> None:
    msg = pg.decode(b"B" + struct.pack("!Qqi", 0x1_0000_0010, 1_000_000, 742))
    assert msg == pg.Begin(final_lsn=0x1_0000_0010, commit_time=datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC), xid=742)
    msg = pg.decode(b"C" + struct.pack("!bQQq", 0, 100, 200, 0))
    assert isinstance(msg, pg.Commit) and (msg.commit_lsn, msg.end_lsn) == (100, 200)


def test_relation() -> None:
    body = struct.pack("!I", 16384) + _s("public") + _s("todos") + b"f" + struct.pack("!h", 2)
    body += struct.pack("!b", 1) + _s("id") + struct.pack("!Ii", 23, -1)
    body += struct.pack("!b", 0) + _s("title") + struct.pack("!Ii", 25, -1)
    msg = pg.decode(b"R" + body)
    assert isinstance(msg, pg.Relation)
    assert msg.qualified_name == "public.todos" and msg.replica_identity == "f"
    assert msg.columns == (pg.Column("id", 23, -1, True), pg.Column("title", 25, -1, False))


def test_insert_update_delete_tuples() -> None:
    values: list[str | bytes | object | None] = ["1", None, pg.UNCHANGED, b"\x00\x01", "é"]
    ins = pg.decode(b"I" + struct.pack("!I", 7) + b"N" + _tuple(values))
    assert ins == pg.Insert(7, ("1", None, pg.UNCHANGED, b"\x00\x01", "é"))
    upd = pg.decode(b"U" + struct.pack("!I", 7) + b"N" + _tuple(["1", "x"]))
    assert upd == pg.Update(7, None, None, ("1", "x"))
    upd = pg.decode(b"U" + struct.pack("!I", 7) + b"K" + _tuple(["0", None]) + b"N" + _tuple(["1", "x"]))
    assert upd == pg.Update(7, "K", ("0", None), ("1", "x"))
    upd = pg.decode(b"U" + struct.pack("!I", 7) + b"O" + _tuple(["1", "w"]) + b"N" + _tuple(["1", "x"]))
    assert upd == pg.Update(7, "O", ("1", "w"), ("1", "x"))
    dele = pg.decode(b"D" + struct.pack("!I", 7) + b"K" + _tuple(["1", None]))
    assert dele == pg.Delete(7, "K", ("1", None))


def test_truncate_origin_type_message() -> None:
    assert pg.decode(b"T" + struct.pack("!ib", 2, 3) + struct.pack("!II", 5, 6)) == pg.Truncate(True, True, (5, 6))
    assert pg.decode(b"O" + struct.pack("!Q", 9) + _s("node")) == pg.Origin(9, "node")
    assert pg.decode(b"Y" + struct.pack("!I", 99) + _s("public") + _s("mood")) == pg.TypeInfo(99, "public", "mood")
    msg = pg.decode(b"M" + struct.pack("!bQ", 1, 5) + _s("p") + struct.pack("!i", 2) + b"hi")
    assert msg == pg.LogicalMessage(True, 5, "p", b"hi")


@pytest.mark.parametrize("data", [
    b"", b"Z", b"B\x00\x01", b"I" + struct.pack("!I", 1) + b"X",
    b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"q",
    b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"t" + struct.pack("!i", 9) + b"ab",
    b"D" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 0),
    b"O" + struct.pack("!Q", 9) + b"unterminated",
    b"C" + struct.pack("!bQQq", 0, 1, 2, 3) + b"extra",
])
def test_malformed_messages_raise(data: bytes) -> None:
    with pytest.raises(PgOutputError):
        pg.decode(data)


_column = st.one_of(st.none(), st.just(pg.UNCHANGED), st.text(), st.binary())


@given(st.lists(_column, max_size=8), st.integers(0, 2**32 - 1))
def test_any_tuple_round_trips(values: list[str | bytes | object | None], oid: int) -> None:
    assert pg.decode(b"I" + struct.pack("!I", oid) + b"N" + _tuple(values)) == pg.Insert(oid, tuple(values))  # type: ignore[arg-type]


@given(st.binary(max_size=64))
def test_garbage_never_raises_anything_but_pgoutput_error(data: bytes) -> None:
    with contextlib.suppress(PgOutputError):
        pg.decode(data)


@given(st.integers(0, 2**64 - 1))
def test_lsn_text_round_trips(lsn: int) -> None:
    assert pg.parse_lsn(pg.format_lsn(lsn)) == lsn


def _changes(conn: psycopg.Connection, slot: str) -> list[pg.Message]:
    rows = conn.execute("SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL,"
                        " 'proto_version', '1', 'publication_names', 'p')", (slot,)).fetchall()
    return [pg.decode(bytes(r[0])) for r in rows]


def test_what_a_real_server_sends(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE d (id int PRIMARY KEY, a text, big text)")
        conn.execute("CREATE TABLE f (id int PRIMARY KEY, a text)")
        conn.execute("ALTER TABLE f REPLICA IDENTITY FULL")
        conn.execute("CREATE PUBLICATION p FOR TABLE d, f")
        conn.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
        conn.execute("ALTER TABLE d ALTER big SET STORAGE EXTERNAL")  # stored out of line, uncompressed
        conn.execute("INSERT INTO d VALUES (1, 'one', repeat('x', 10000))")
        conn.execute("INSERT INTO f VALUES (1, 'one')")
        with conn.transaction():
            conn.execute("UPDATE d SET a = 'uno' WHERE id = 1")
            conn.execute("UPDATE d SET id = 2 WHERE id = 1")
            conn.execute("UPDATE f SET a = 'uno' WHERE id = 1")
        conn.execute("DELETE FROM d WHERE id = 2")
        conn.execute("DELETE FROM f WHERE id = 1")
        conn.execute("TRUNCATE d, f")
        msgs = _changes(conn, "s")
    rels = {m.oid: m for m in msgs if isinstance(m, pg.Relation)}
    name = {oid: r.name for oid, r in rels.items()}
    assert rels and all(r.columns[0] == pg.Column("id", 23, -1, True) for r in rels.values())
    assert {r.name: r.replica_identity for r in rels.values()} == {"d": "d", "f": "f"}
    rows = [m for m in msgs if isinstance(m, (pg.Insert, pg.Update, pg.Delete, pg.Truncate))]
    assert [type(m).__name__ for m in rows] == ["Insert", "Insert", "Update", "Update", "Update", "Delete",
                                                "Delete", "Truncate"]
    ins_d = rows[0]
    assert isinstance(ins_d, pg.Insert) and ins_d.new[:2] == ("1", "one") and isinstance(ins_d.new[2], str)
    upd_a, upd_key, upd_f = rows[2], rows[3], rows[4]
    assert isinstance(upd_a, pg.Update) and name[upd_a.relation_oid] == "d"
    # DEFAULT identity, key unchanged: no old tuple, and the untouched TOASTed column is not resent.
    assert upd_a.old_kind is None and upd_a.new == ("1", "uno", pg.UNCHANGED)
    # DEFAULT identity, key changed: the old key only.
    assert isinstance(upd_key, pg.Update) and upd_key.old_kind == "K" and upd_key.old == ("1", None, None)
    # FULL identity: the whole old row.
    assert isinstance(upd_f, pg.Update) and upd_f.old_kind == "O" and upd_f.old == ("1", "one")
    assert upd_f.new == ("1", "uno")
    del_d, del_f = rows[5], rows[6]
    assert isinstance(del_d, pg.Delete) and del_d.old_kind == "K" and del_d.old == ("2", None, None)
    assert isinstance(del_f, pg.Delete) and del_f.old_kind == "O" and del_f.old == ("1", "uno")
    trunc = rows[7]
    assert isinstance(trunc, pg.Truncate) and set(trunc.relation_oids) == set(rels)
    begins = [m for m in msgs if isinstance(m, pg.Begin)]
    commits = [m for m in msgs if isinstance(m, pg.Commit)]
    assert len(begins) == len(commits) == 6  # the three updates are one transaction
    assert all(b.final_lsn == c.commit_lsn and c.end_lsn > c.commit_lsn for b, c in zip(begins, commits, strict=True))
