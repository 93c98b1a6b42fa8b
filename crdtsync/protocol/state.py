"""The native connection's state machine: one enum, one transition table.

Rules (``TRANSITIONS`` below is the whole truth; anything not in it is refused):

1. A client starts IDLE and sends Hello (-> AWAITING_WELCOME); a Welcome opens it (-> OPEN).
2. A server starts AWAITING_HELLO; a Hello moves it to AUTHENTICATING, where the application
   checks the token and either sends Welcome (-> OPEN) or a fatal Error.
3. Only in OPEN may either side send or receive session messages: Subscribe, Unsubscribe,
   SyncStep1/2, Update, Ack, Awareness, Ping, Pong and non-fatal Errors. Hello and Welcome
   are never valid again.
4. A fatal Error, sent or received, in any state but CLOSED, moves to CLOSING: the sender
   flushes what it has queued and closes the transport; frames still arriving are dropped.
5. ``close()`` (the transport is gone) moves any state to CLOSED. Nothing happens after that.

Receiving a message the table refuses is the peer's protocol violation
(:class:`UnexpectedMessageError`, answered with a fatal ``bad_frame`` Error); sending one is
our own bug (:class:`InvalidStateError`).
"""

from __future__ import annotations

import enum

from ..errors import InvalidStateError, UnexpectedMessageError  # defined in the one tree; re-exported

__all__ = ["TRANSITIONS", "InvalidStateError", "Role", "State", "Trigger", "UnexpectedMessageError"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    IDLE = "idle"  # client, before Hello
    AWAITING_WELCOME = "awaiting_welcome"  # client, Hello sent
    AWAITING_HELLO = "awaiting_hello"  # server, before Hello
    AUTHENTICATING = "authenticating"  # server, Hello received, deciding
    OPEN = "open"
    CLOSING = "closing"  # a fatal Error was sent or received
    CLOSED = "closed"


class Trigger(enum.Enum):
    SEND_HELLO = "send_hello"
    RECV_HELLO = "recv_hello"
    SEND_WELCOME = "send_welcome"
    RECV_WELCOME = "recv_welcome"
    SEND_MESSAGE = "send_message"  # any session message, non-fatal Error included
    RECV_MESSAGE = "recv_message"
    SEND_FATAL = "send_fatal"
    RECV_FATAL = "recv_fatal"
    CLOSE = "close"


C, S = Role.CLIENT, Role.SERVER

TRANSITIONS: dict[tuple[Role, State, Trigger], State] = {
    # handshake
    (C, State.IDLE, Trigger.SEND_HELLO): State.AWAITING_WELCOME,
    (C, State.AWAITING_WELCOME, Trigger.RECV_WELCOME): State.OPEN,
    (S, State.AWAITING_HELLO, Trigger.RECV_HELLO): State.AUTHENTICATING,
    (S, State.AUTHENTICATING, Trigger.SEND_WELCOME): State.OPEN,
    # the session
    **{(r, State.OPEN, t): State.OPEN for r in Role for t in (Trigger.SEND_MESSAGE, Trigger.RECV_MESSAGE)},
    # fatal errors, either way, from any live state
    **{
        (r, s, t): State.CLOSING
        for r in Role
        for s in State
        if s not in (State.CLOSING, State.CLOSED)
        for t in (Trigger.SEND_FATAL, Trigger.RECV_FATAL)
    },
    # the transport is gone
    **{(r, s, Trigger.CLOSE): State.CLOSED for r in Role for s in State},
}

INITIAL: dict[Role, State] = {C: State.IDLE, S: State.AWAITING_HELLO}

del C, S
