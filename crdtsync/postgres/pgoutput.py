"""A decoder of PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1).

Pure: bytes in, dataclasses out, no I/O. :func:`decode` turns one message (what
``pg_logical_slot_peek_binary_changes`` returns in its ``data`` column, or one XLogData
payload of a streaming connection) into a :class:`Begin`, :class:`Commit`, :class:`Relation`,
:class:`Insert`, :class:`Update`, :class:`Delete`, :class:`Truncate`, :class:`Origin`,
:class:`TypeInfo` or :class:`LogicalMessage`. A message that does not decode raises
:class:`~crdtsync.errors.PgOutputError`.

Tuple data is kept as the server sent it: a column is ``None`` (SQL NULL), :data:`UNCHANGED`
(an unchanged TOASTed value the server did not resend) or ``str`` (text format; binary format
is ``bytes``). Converting text to Python values by type is :mod:`crdtsync.postgres.values`.

An UPDATE's or DELETE's old tuple depends on the table's REPLICA IDENTITY: ``DEFAULT`` sends
the old key columns (``old_kind == "K"``, other columns ``None``) only when the key changed
(UPDATE) or always (DELETE); ``FULL`` sends the whole old row (``old_kind == "O"``).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from ..errors import PgOutputError

_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


class _Unchanged(enum.Enum):
    """An unchanged TOASTed column (``'u'``): the value is whatever it was before."""

    UNCHANGED = "UNCHANGED"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged.UNCHANGED
Value = str | bytes | _Unchanged | None
Tuple = tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int  # the LSN of the transaction's commit record
    commit_time: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int  # confirm / advance the slot to this
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # "d" default, "n" nothing, "f" full, "i" index
    columns: tuple[Column, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: Tuple


@dataclass(frozen=True, slots=True)
class Update:
    relation_oid: int
    old_kind: str | None  # None (no old tuple), "K" (key columns) or "O" (the whole old row)
    old: Tuple | None
    new: Tuple


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old_kind: str  # "K" or "O"
    old: Tuple


@dataclass(frozen=True, slots=True)
class Truncate:
    cascade: bool
    restart_identity: bool
    relation_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate | LogicalMessage


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise PgOutputError(f"truncated pgoutput message: need {n} bytes at offset {self.pos} of {len(self.buf)}")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def byte(self) -> str:
        return chr(self._take(1)[0])

    def int8(self) -> int:
        return self._take(1)[0]

    def int16(self) -> int:
        return int(struct.unpack("!h", self._take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack("!i", self._take(4))[0])

    def uint32(self) -> int:
        return int(struct.unpack("!I", self._take(4))[0])

    def int64(self) -> int:
        return int(struct.unpack("!q", self._take(8))[0])

    def lsn(self) -> int:
        return int(struct.unpack("!Q", self._take(8))[0])

    def time(self) -> datetime:
        return _PG_EPOCH + timedelta(microseconds=self.int64())

    def string(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError("truncated pgoutput message: unterminated string")
        raw = self.buf[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PgOutputError(f"pgoutput string is not UTF-8: {raw!r}") from exc

    def tuple(self) -> Tuple:
        values: list[Value] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                data = self._take(self.int32())
                try:
                    values.append(data.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise PgOutputError("pgoutput text column is not UTF-8") from exc
            elif kind == "b":
                values.append(self._take(self.int32()))
            else:
                raise PgOutputError(f"unknown pgoutput tuple column kind {kind!r}")
        return tuple(values)

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise PgOutputError(f"{len(self.buf) - self.pos} trailing bytes after a pgoutput message")


def decode(data: bytes) -> Message:
    """Decode one pgoutput message. Raises :class:`PgOutputError` on malformed input."""
    if not data:
        raise PgOutputError("empty pgoutput message")
    r = _Reader(bytes(data))
    kind = r.byte()
    msg: Message
    if kind == "B":
        msg = Begin(final_lsn=r.lsn(), commit_time=r.time(), xid=r.uint32())
    elif kind == "C":
        msg = Commit(flags=r.int8(), commit_lsn=r.lsn(), end_lsn=r.lsn(), commit_time=r.time())
    elif kind == "O":
        msg = Origin(lsn=r.lsn(), name=r.string())
    elif kind == "R":
        oid, namespace, name, identity = r.uint32(), r.string(), r.string(), r.byte()
        cols = []
        for _ in range(r.int16()):
            flags = r.int8()
            cols.append(Column(name=r.string(), type_oid=r.uint32(), type_modifier=r.int32(), is_key=bool(flags & 1)))
        msg = Relation(oid=oid, namespace=namespace, name=name, replica_identity=identity, columns=tuple(cols))
    elif kind == "Y":
        msg = TypeInfo(oid=r.uint32(), namespace=r.string(), name=r.string())
    elif kind == "I":
        oid = r.uint32()
        if (marker := r.byte()) != "N":
            raise PgOutputError(f"INSERT: expected a new tuple ('N'), got {marker!r}")
        msg = Insert(relation_oid=oid, new=r.tuple())
    elif kind == "U":
        oid = r.uint32()
        marker = r.byte()
        old_kind: str | None = None
        old: Tuple | None = None
        if marker in ("K", "O"):
            old_kind, old = marker, r.tuple()
            marker = r.byte()
        if marker != "N":
            raise PgOutputError(f"UPDATE: expected a new tuple ('N'), got {marker!r}")
        msg = Update(relation_oid=oid, old_kind=old_kind, old=old, new=r.tuple())
    elif kind == "D":
        oid = r.uint32()
        marker = r.byte()
        if marker not in ("K", "O"):
            raise PgOutputError(f"DELETE: expected an old tuple ('K' or 'O'), got {marker!r}")
        msg = Delete(relation_oid=oid, old_kind=marker, old=r.tuple())
    elif kind == "T":
        count, options = r.int32(), r.int8()
        msg = Truncate(cascade=bool(options & 1), restart_identity=bool(options & 2),
                       relation_oids=tuple(r.uint32() for _ in range(count)))
    elif kind == "M":
        flags, lsn, prefix = r.int8(), r.lsn(), r.string()
        msg = LogicalMessage(transactional=bool(flags & 1), lsn=lsn, prefix=prefix, content=r._take(r.int32()))
    else:
        raise PgOutputError(f"unknown pgoutput message type {kind!r}")
    r.done()
    return msg


def format_lsn(lsn: int) -> str:
    """``0x16B3748`` -> ``'0/16B3748'``, PostgreSQL's pg_lsn text form."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """``'0/16B3748'`` -> ``0x16B3748``."""
    try:
        hi, lo = text.split("/")
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError as exc:
        raise PgOutputError(f"not an LSN: {text!r}") from exc
