"""Interaction callback and interaction-webhook routes (authorised by the token in the URL).

The two deadlines are checked against the simulator's injected clock: the callback must come
within 3 s of dispatch (else 404/10062), the webhook token works for 15 min from the
interaction's snowflake time (else 401/50027). A second callback is 400/40060.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .interactions import ALLOWED_CALLBACKS, APPLICATION_COMMAND, SimInteraction
from .messages import SimMessage, unknown_message, validate_message_body
from .models import (
    COMPONENTS_V2,
    EPHEMERAL,
    JSON,
    LOADING,
    SUPPRESS_EMBEDS,
    ApiError,
    StoredAttachment,
    invalid_form,
)
from .rest import ApiRequest, Reply, Router

if TYPE_CHECKING:
    from .state import SimState

CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL = 4, 5, 6, 7, 9
CHAT_INPUT_COMMAND_MESSAGE = 20
FOLLOWUP_FLAGS = EPHEMERAL | SUPPRESS_EMBEDS | COMPONENTS_V2
MAX_MODAL_TITLE = 45
MAX_MODAL_ROWS = 5


def unknown_interaction() -> ApiError:
    return ApiError(404, 10062, "Unknown interaction")


def invalid_webhook_token() -> ApiError:
    return ApiError(401, 50027, "Invalid Webhook Token")


class InteractionRoutes:
    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def register(self, router: Router) -> None:
        add = router.add
        add(
            "POST", "/interactions/{interaction_id}/{token}/callback", self.callback, bot_auth=False
        )
        add("POST", "/webhooks/{app_id}/{token}", self.followup, bot_auth=False)
        message_route = "/webhooks/{app_id}/{token}/messages/{message_id}"
        add("GET", message_route, self.get_message, bot_auth=False)
        add("PATCH", message_route, self.edit_message, bot_auth=False)
        add("DELETE", message_route, self.delete_message, bot_auth=False)

    # -- initial response ------------------------------------------------------------------

    async def callback(self, req: ApiRequest) -> Reply:
        inter = self.sim.interactions.get(req.snowflake("interaction_id"))
        if inter is None or inter.token != req.params["token"]:
            raise unknown_interaction()
        req.call.interaction_id = inter.id
        if inter.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if inter.callback_late(self.sim.clock()):
            raise unknown_interaction()
        body = req.body()
        kind = int(body.get("type") or 0)
        data: JSON = body.get("data") or {}
        if kind not in ALLOWED_CALLBACKS.get(inter.type, frozenset()):
            raise invalid_form(
                ["type"], "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid callback type."
            )
        message = await self._apply_callback(req, inter, kind, data)
        if req.query.get("with_response") not in ("1", "true", "True"):
            return Reply(status=204)
        return Reply(body=self._callback_body(inter, kind, message))

    async def _apply_callback(
        self, req: ApiRequest, inter: SimInteraction, kind: int, data: JSON
    ) -> SimMessage | None:
        """Validate, then change state: a rejected callback leaves the interaction unanswered."""
        uploads = self.sim.store_uploads(req, limit=self._limit(inter), channel_id=inter.channel_id)
        if kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            validate_message_body(data)
        if kind == MODAL:
            _validate_modal(data)
        if kind == UPDATE_MESSAGE and inter.original_message is None:
            raise invalid_form(
                ["type"], "INTERACTION_CALLBACK_TYPE_INVALID", "No message to update."
            )
        inter.accept_callback(kind, data, req.call.files)
        if kind == CHANNEL_MESSAGE:
            return await self._respond_with_message(inter, data, uploads, loading=False)
        if kind == DEFERRED_MESSAGE:
            return await self._respond_with_message(
                inter, {"flags": data.get("flags")}, [], loading=True
            )
        if kind == UPDATE_MESSAGE and inter.original_message is not None:
            inter.original_message.apply_edit(data, uploads, self.sim.clock())
            await self.sim.publish(inter.original_message, "MESSAGE_UPDATE")
        return inter.original_message if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) else None

    async def _respond_with_message(
        self, inter: SimInteraction, data: JSON, uploads: list[StoredAttachment], *, loading: bool
    ) -> SimMessage:
        channel = self.sim.require_channel(inter.channel_id)
        kind = CHAT_INPUT_COMMAND_MESSAGE if inter.type == APPLICATION_COMMAND else 0
        extra = LOADING if loading else 0
        message = self.sim.new_message(
            channel, data, uploads, interaction=inter, message_type=kind, extra_flags=extra
        )
        inter.original_message = message
        await self.sim.publish(message, "MESSAGE_CREATE")
        return message

    def _callback_body(self, inter: SimInteraction, kind: int, message: SimMessage | None) -> JSON:
        """The ``with_response=1`` shape discord.py parses into ``InteractionCallbackResponse``."""
        summary: JSON = {
            "id": str(inter.id),
            "type": inter.type,
            "response_message_loading": kind == DEFERRED_MESSAGE,
            "response_message_ephemeral": inter.ephemeral,
        }
        resource: JSON = {"type": kind}
        if message is not None:
            summary["response_message_id"] = str(message.id)
            resource["message"] = self.sim.message_payload(message)
        return {"interaction": summary, "resource": resource}

    def _limit(self, inter: SimInteraction) -> int:
        """Interaction uploads may use the invoker's ``attachment_size_limit`` (Nitro included)."""
        return max(self.sim.upload_limit, inter.attachment_size_limit)

    # -- webhook (followups and @original) -------------------------------------------------

    def _webhook_interaction(self, req: ApiRequest) -> SimInteraction:
        if req.snowflake("app_id") != self.sim.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        inter = self.sim.interaction_by_token(req.params["token"])
        if inter is None:
            raise invalid_webhook_token()
        req.call.interaction_id = inter.id
        if inter.token_expired(self.sim.clock()):
            raise invalid_webhook_token()
        if not inter.acknowledged:
            raise ApiError(404, 10015, "Unknown Webhook")
        return inter

    def _webhook_message(self, req: ApiRequest, inter: SimInteraction) -> SimMessage:
        message_id = req.params["message_id"]
        if message_id == "@original":
            message = inter.original_message
        else:
            message = self.sim.messages.get(req.snowflake("message_id"))
        if message is None or message.deleted or not inter.owns(message):
            raise unknown_message()
        return message

    async def followup(self, req: ApiRequest) -> Reply:
        """A followup; the first one after a deferral replaces the "thinking" message instead."""
        inter = self._webhook_interaction(req)
        body = req.body()
        uploads = self.sim.store_uploads(req, limit=self._limit(inter), channel_id=inter.channel_id)
        validate_message_body(body)
        original = inter.original_message
        if inter.response_type == DEFERRED_MESSAGE and original is not None and original.loading:
            original.apply_edit(body, uploads, self.sim.clock())
            message = original
            await self.sim.publish(message, "MESSAGE_UPDATE")
        else:
            channel = self.sim.require_channel(inter.channel_id)
            flags = int(body.get("flags") or 0) & FOLLOWUP_FLAGS
            message = self.sim.new_message(
                channel, {**body, "flags": flags}, uploads, interaction=inter, message_type=0
            )
            await self.sim.publish(message, "MESSAGE_CREATE")
        inter.followups.append(message)
        if req.query.get("wait") not in ("1", "true", "True"):
            return Reply(status=204)
        return Reply(body=self.sim.message_payload(message))

    async def get_message(self, req: ApiRequest) -> Reply:
        inter = self._webhook_interaction(req)
        return Reply(body=self.sim.message_payload(self._webhook_message(req, inter)))

    async def edit_message(self, req: ApiRequest) -> Reply:
        inter = self._webhook_interaction(req)
        message = self._webhook_message(req, inter)
        uploads = self.sim.store_uploads(req, limit=self._limit(inter), channel_id=inter.channel_id)
        body = req.body()
        validate_message_body({**body, "flags": body.get("flags", message.flags)})
        message.apply_edit(body, uploads, self.sim.clock())
        if message is inter.original_message:
            inter.original_edits.append(body)
        await self.sim.publish(message, "MESSAGE_UPDATE")
        return Reply(body=self.sim.message_payload(message))

    async def delete_message(self, req: ApiRequest) -> Reply:
        inter = self._webhook_interaction(req)
        message = self._webhook_message(req, inter)
        if message is inter.original_message:
            inter.original_deleted = True
        await self.sim.delete_message(message)
        return Reply(status=204)


def _validate_modal(data: JSON) -> None:
    """Modal limits: custom_id 1-100, title 1-45, 1-5 top-level components."""
    custom_id = str(data.get("custom_id") or "")
    if not 1 <= len(custom_id) <= 100:
        raise invalid_form(
            ["data", "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    if not 1 <= len(str(data.get("title") or "")) <= MAX_MODAL_TITLE:
        raise invalid_form(
            ["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
        )
    if not 1 <= len(data.get("components") or []) <= MAX_MODAL_ROWS:
        raise invalid_form(
            ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
