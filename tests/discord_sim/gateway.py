"""The gateway websocket: HELLO, heartbeat ACKs, IDENTIFY -> READY + GUILD_CREATE, RESUME.

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

from .models import JSON, GatewayFrame

if TYPE_CHECKING:
    from .state import SimState

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
AUTHENTICATION_FAILED = 4004
CLEAN_CLOSE_CODES = (1000, 1001)


@dataclass(eq=False)
class GatewaySession:
    """An identified session; it outlives its connection so it can be resumed."""

    id: str
    identify: JSON
    seq: int = 0
    backlog: list[JSON] = field(default_factory=list)
    connection: GatewayConnection | None = None
    invalid: bool = False


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

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send an event to every valid session (queued for RESUME if disconnected)."""
        sessions = self.valid_sessions
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
        session = GatewaySession(id=uuid.uuid4().hex, identify=data, connection=conn)
        self.sessions[session.id] = session
        conn.session = session
        await self._dispatch_to(
            session, "READY", self.sim.ready_payload(session.id, data.get("shard"))
        )
        for guild in self.sim.guilds:
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


def _as_object(data: object) -> JSON:
    """A frame's ``d`` as a dict; a malformed frame is handled as an empty one."""
    return data if isinstance(data, dict) else {}
