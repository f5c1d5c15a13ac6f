"""The gateway websocket: HELLO, heartbeat ACKs, IDENTIFY -> READY + GUILD_CREATE, RESUME.

Sharded like Discord: an IDENTIFY may carry ``shard: [shard_id, shard_count]``; that
session then gets READY, GUILD_CREATE and every event only for the guilds whose
``(guild_id >> 22) % shard_count`` is its ``shard_id``, and events of no guild (DMs) on
shard 0 alone. A session without ``shard`` gets everything, as shard 0 of 1 does.

Frames are JSON *text*: discord.py only decompresses binary frames (gateway.py
``received_message``), so the ``compress`` query parameter it sends can be ignored.
Each session keeps its dispatched frames so a RESUME can replay what a dropped connection missed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .models import JSON, GatewayFrame, shard_of

if TYPE_CHECKING:
    from .state import SimState

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
AUTHENTICATION_FAILED = 4004
INVALID_SHARD, SHARDING_REQUIRED = 4010, 4011
CLEAN_CLOSE_CODES = (1000, 1001)
#: Events whose ``id`` is the guild's own (the others name it in ``guild_id``).
GUILD_EVENTS = ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE")


@dataclass(eq=False)
class GatewaySession:
    """An identified session; it outlives its connection so it can be resumed."""

    id: str
    identify: JSON
    seq: int = 0
    backlog: list[JSON] = field(default_factory=list)
    connection: GatewayConnection | None = None
    invalid: bool = False
    #: ``(shard_id, shard_count)`` from IDENTIFY; None: the session takes every guild.
    shard: tuple[int, int] | None = None

    def carries(self, guild_id: int | None) -> bool:
        """Whether this session receives the events of ``guild_id`` (None: a DM's)."""
        if self.shard is None:
            return True
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, shard_count) == shard_id


@dataclass(eq=False)
class GatewayConnection:
    """One websocket; the lock keeps frames in sequence order on the wire."""

    ws: web.WebSocketResponse
    session: GatewaySession | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Gateway:
    """Serves discord.py's ``DiscordWebSocket`` on the simulator's root URL."""

    def __init__(self, sim: SimState) -> None:
        self.sim = sim
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = GatewayConnection(ws)
        self.connections.add(conn)
        try:
            await self._send(
                conn, {"op": HELLO, "d": {"heartbeat_interval": self.sim.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(conn, json.loads(msg.data))
        finally:
            self.connections.discard(conn)
            self._detach(conn)
            await self.sim.notify()
        return ws

    def _detach(self, conn: GatewayConnection) -> None:
        """A client closing with 1000/1001 ends its session, as on Discord; others may RESUME."""
        session = conn.session
        if session is None or session.connection is not conn:
            return
        session.connection = None
        if conn.ws.close_code in CLEAN_CLOSE_CODES:
            session.invalid = True

    @property
    def valid_sessions(self) -> list[GatewaySession]:
        """Sessions a dispatch reaches: connected, or dropped but still resumable."""
        return [s for s in self.sessions.values() if not s.invalid]

    def sessions_for(self, guild_id: int | None) -> list[GatewaySession]:
        """The valid sessions that carry ``guild_id``'s events (its shard's)."""
        return [s for s in self.valid_sessions if s.carries(guild_id)]

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send an event to every valid session of its guild's shard (queued for RESUME if
        disconnected); an event naming no guild goes to shard 0."""
        guild_id = data.get("id") if event in GUILD_EVENTS else data.get("guild_id")
        sessions = self.sessions_for(int(guild_id) if guild_id else None)
        for session in sessions:
            await self._dispatch_to(session, event, data)
        return len(sessions)

    async def reconnect_all(self) -> None:
        """Op 7 RECONNECT: discord.py closes and RESUMEs at ``resume_gateway_url``."""
        for conn in list(self.connections):
            await self._send(conn, {"op": RECONNECT, "d": None})

    async def close_all(self, code: int) -> None:
        for conn in list(self.connections):
            await conn.ws.close(code=code)

    async def _on_frame(self, conn: GatewayConnection, frame: JSON) -> None:
        op, data = frame.get("op"), frame.get("d")
        await self.sim.log_frame(
            GatewayFrame("received", op or 0, None, None, data, self.sim.clock())
        )
        if op == HEARTBEAT:
            self.sim.heartbeats += 1
            await self._send(conn, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(conn, _as_object(data))
        elif op == RESUME:
            await self._resume(conn, _as_object(data))
        elif op == REQUEST_MEMBERS:
            await self._members_chunk(conn, _as_object(data))

    async def _identify(self, conn: GatewayConnection, data: JSON) -> None:
        self.sim.identifies += 1
        self.sim.identify_payloads.append(data)
        if data.get("token") != self.sim.token:
            await conn.ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard = _shard(data.get("shard"))
        if data.get("shard") is not None and shard is None:
            await conn.ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        session = GatewaySession(id=uuid.uuid4().hex, identify=data, connection=conn, shard=shard)
        guilds = [g for g in self.sim.guilds if session.carries(g.id)]
        limit = self.sim.max_guilds_per_session
        if limit is not None and len(guilds) > limit:
            await conn.ws.close(code=SHARDING_REQUIRED, message=b"Sharding required.")
            return
        self.sessions[session.id] = session
        conn.session = session
        await self._dispatch_to(
            session, "READY", self.sim.ready_payload(session.id, data.get("shard"), guilds)
        )
        for guild in guilds:
            await self._dispatch_to(session, "GUILD_CREATE", self.sim.guild_create_payload(guild))

    async def _resume(self, conn: GatewayConnection, data: JSON) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.invalid or data.get("token") != self.sim.token:
            await self._send(conn, {"op": INVALID_SESSION, "d": False})
            return
        self.sim.resumes += 1
        session.connection = conn
        conn.session = session
        last_seen = int(data.get("seq") or 0)
        for frame in session.backlog:
            if frame["s"] > last_seen:
                await self._send(conn, frame)
        await self._dispatch_to(session, "RESUMED", {})

    async def _members_chunk(self, conn: GatewayConnection, data: JSON) -> None:
        """Answer op 8 so a bot with the members intent does not wait for chunks forever."""
        if conn.session is None:
            return
        guild = self.sim.find_guild(int(data.get("guild_id") or 0))
        members = (
            []
            if guild is None
            else [m.payload(self.sim.users[m.user_id]) for m in guild.members.values()]
        )
        chunk: JSON = {
            "guild_id": str(data.get("guild_id")),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._dispatch_to(conn.session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _dispatch_to(self, session: GatewaySession, event: str, data: JSON) -> None:
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.backlog.append(frame)
        if session.connection is not None:
            await self._send(session.connection, frame)

    async def _send(self, conn: GatewayConnection, frame: JSON) -> None:
        async with conn.lock:
            if conn.ws.closed:
                return  # a dispatch stays in the session backlog for a RESUME
            try:
                await conn.ws.send_str(json.dumps(frame))
            except ConnectionResetError:
                return
        await self.sim.log_frame(
            GatewayFrame(
                "sent",
                frame["op"],
                frame.get("t"),
                frame.get("s"),
                frame.get("d"),
                self.sim.clock(),
            )
        )


def _shard(value: object) -> tuple[int, int] | None:
    """IDENTIFY's ``[shard_id, shard_count]``, if well formed (``0 <= id < count``)."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    shard_id, shard_count = value
    if not (isinstance(shard_id, int) and isinstance(shard_count, int)):
        return None
    return (shard_id, shard_count) if 0 <= shard_id < shard_count else None


def _as_object(data: object) -> JSON:
    """A frame's ``d`` as a dict; a malformed frame is handled as an empty one."""
    return data if isinstance(data, dict) else {}
