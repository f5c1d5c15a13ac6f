"""Channel message routes under the bot token: create, list, fetch, edit, delete.

Rules Discord applies here and discord.py does not: per-file upload limit (413/40005), the
``enforce_nonce`` dedup window, component layout limits (50035), that ephemeral messages are
invisible to the channel endpoints (404/10008), the bot's permissions in the channel (403:
50001 Missing Access without View Channel or, for reads, Read Message History; 50013 Missing
Permissions without Send Messages or Attach Files), and closed direct messages (403/50007).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .messages import SimMessage, unknown_message, validate_message_body
from .models import JSON, ApiError, SimChannel
from .rest import ApiRequest, Reply, Router

if TYPE_CHECKING:
    from .state import SimState

DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 100


class MessageRoutes:
    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def register(self, router: Router) -> None:
        router.add("POST", "/channels/{channel_id}/messages", self.create)
        router.add("GET", "/channels/{channel_id}/messages", self.history)
        router.add("GET", "/channels/{channel_id}/messages/{message_id}", self.fetch)
        router.add("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit)
        router.add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete)
        router.add(
            "POST", "/channels/{channel_id}/messages/{message_id}/threads", self.start_thread
        )

    async def create(self, req: ApiRequest) -> Reply:
        channel = self.sim.require_channel(req.snowflake("channel_id"))
        self._check_post(channel, req)
        body = req.body()
        uploads = self.sim.store_uploads(
            req, limit=self.sim.upload_limit_for(channel), channel_id=channel.id
        )
        validate_message_body(body)
        duplicate = self._nonce_duplicate(channel.id, body)
        if duplicate is not None:
            return Reply(body=self.sim.message_payload(duplicate))
        reference = self._reference(channel, body)
        message = self.sim.new_message(
            channel, body, uploads, message_type=19 if reference is not None else 0
        )
        message.reference_id = reference
        if body.get("nonce") is not None:
            self.sim.nonces[(channel.id, message.author_id, str(body["nonce"]))] = message
        await self.sim.publish(message, "MESSAGE_CREATE")
        return Reply(body=self.sim.message_payload(message))

    def _reference(self, channel: SimChannel, body: JSON) -> int | None:
        """A reply's target: a message of this channel, else 400/50035 unless
        ``fail_if_not_exists`` is false (then the post goes up as a plain message)."""
        ref = body.get("message_reference")
        if not ref:
            return None
        target = self.sim.messages.get(int(ref["message_id"]))
        if target is None or target.deleted or target.channel_id != channel.id:
            if ref.get("fail_if_not_exists", True):
                raise ApiError(400, 50035, "Invalid Form Body: Unknown message")
            return None
        return target.id

    def _nonce_duplicate(self, channel_id: int, body: JSON) -> SimMessage | None:
        """Discord's dedup: same author, same nonce, same channel, within the last few minutes."""
        if not body.get("enforce_nonce") or body.get("nonce") is None:
            return None
        found = self.sim.nonces.get((channel_id, self.sim.bot_user.id, str(body["nonce"])))
        if found is None or found.deleted:
            return None
        if self.sim.clock() - found.created_at > self.sim.nonce_window:
            return None
        return found

    async def history(self, req: ApiRequest) -> Reply:
        """Newest first, like Discord, for ``before``/``after``/``around`` alike."""
        channel = self.sim.require_channel(req.snowflake("channel_id"))
        _check_read(channel)
        limit = max(1, min(MAX_HISTORY_LIMIT, int(req.query.get("limit", DEFAULT_HISTORY_LIMIT))))
        visible = [
            m for m in self.sim.channel_messages(channel.id) if not m.deleted and not m.ephemeral
        ]
        page = _page(visible, req.query, limit)
        return Reply(body=[self.sim.message_payload(m) for m in sorted(page, key=lambda m: -m.id)])

    async def fetch(self, req: ApiRequest) -> Reply:
        return Reply(body=self.sim.message_payload(self._visible(req)))

    async def edit(self, req: ApiRequest) -> Reply:
        message = self._visible(req)
        if message.author_id != self.sim.bot_user.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        channel = self.sim.require_channel(message.channel_id)
        uploads = self.sim.store_uploads(
            req, limit=self.sim.upload_limit_for(channel), channel_id=channel.id
        )
        body = req.body()
        validate_message_body({**body, "flags": body.get("flags", message.flags)})
        message.apply_edit(body, uploads, self.sim.clock())
        await self.sim.publish(message, "MESSAGE_UPDATE")
        return Reply(body=self.sim.message_payload(message))

    async def delete(self, req: ApiRequest) -> Reply:
        message = self._visible(req)
        await self.sim.delete_message(message)
        return Reply(status=204)

    async def start_thread(self, req: ApiRequest) -> Reply:
        """A public thread started from a message: it takes the message's id, lives in the
        message's server under its channel, and inherits the channel's overwrites. Needs
        Create Public Threads (403/50013); one per message (400/160004)."""
        message = self._visible(req)
        channel = self.sim.require_channel(message.channel_id)
        if channel.is_thread or channel.type == 1:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if channel.bot_lacks(create_public_threads=True):
            raise ApiError(403, 50013, "Missing Permissions")
        if self.sim.find_channel(message.id) is not None:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        body = req.body()
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise ApiError(400, 50035, "Invalid Form Body: name")
        thread = SimChannel(
            name=name,
            id=message.id,
            type=11,
            parent_id=channel.id,
            guild_id=channel.guild_id,
            bot_denied=channel.bot_denied,
            owner_id=self.sim.bot_user.id,
        )
        guild = self.sim.guild_for_channel(channel.id)
        assert guild is not None
        guild.channels.append(thread)
        return Reply(status=201, body=thread.payload())

    def _check_post(self, channel: SimChannel, req: ApiRequest) -> None:
        """The bot's rights to post here: see, send (in a thread: Send Messages in Threads),
        attach; a DM needs the member's consent."""
        if channel.bot_lacks(view_channel=True):
            raise ApiError(403, 50001, "Missing Access")
        if channel.is_thread and channel.bot_lacks(send_messages_in_threads=True):
            raise ApiError(403, 50013, "Missing Permissions")
        if not channel.is_thread and channel.bot_lacks(send_messages=True):
            raise ApiError(403, 50013, "Missing Permissions")
        if req.call.files and channel.bot_lacks(attach_files=True):
            raise ApiError(403, 50013, "Missing Permissions")
        if channel.type == 1 and channel.recipient_id in self.sim.closed_dms:
            raise ApiError(403, 50007, "Cannot send messages to this user")

    def _visible(self, req: ApiRequest) -> SimMessage:
        """The addressed message as the bot token sees it; ephemeral ones do not exist here."""
        channel = self.sim.require_channel(req.snowflake("channel_id"))
        if channel.bot_lacks(view_channel=True):
            raise ApiError(403, 50001, "Missing Access")
        message = self.sim.messages.get(req.snowflake("message_id"))
        if (
            message is None
            or message.channel_id != channel.id
            or message.deleted
            or message.ephemeral
        ):
            raise unknown_message()
        return message


def _check_read(channel: SimChannel) -> None:
    """Reading history needs View Channel and Read Message History (else 403/50001)."""
    if channel.bot_lacks(view_channel=True, read_message_history=True):
        raise ApiError(403, 50001, "Missing Access")


def _page(messages: list[SimMessage], query: dict[str, str], limit: int) -> list[SimMessage]:
    """Select the page Discord would return (``messages`` is oldest first)."""
    if "around" in query:
        pivot = int(query["around"])
        older = [m for m in messages if m.id <= pivot][-((limit + 1) // 2) :]
        newer = [m for m in messages if m.id > pivot][: limit - len(older)]
        return older + newer
    if "after" in query:
        return [m for m in messages if m.id > int(query["after"])][:limit]
    if "before" in query:
        messages = [m for m in messages if m.id < int(query["before"])]
    return messages[-limit:]
