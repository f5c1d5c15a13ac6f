"""Freepik / Magnific (providers.md §1): the tier is the endpoint, the result is a plain URL.

Freepik has no resolution field: ``768P`` goes to ``.../minimax-hailuo-02-768p`` and
``1080P`` to ``...-1080p`` (6 s only), and a task can only be queried on the tier path
it was created on, so the tier travels in ``SubmitReceipt.meta``. One third party says
the 768p endpoints were retired; a 404 there is an ``UNSUPPORTED`` refusal (code
``tier``): the job goes to the next provider, or fails refunded saying why. It is
never sent to 1080p instead: that would change what the member asked for and what
the owner pays, silently.

The key header is ``x-freepik-api-key``, or ``x-magnific-api-key`` when the base URL's
host is magnific.com (the rebrand); a constructor argument overrides both.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from hailuo.model.camera import Spelling
from hailuo.model.capability import (
    ALL_MODES,
    HOUR,
    ImageRules,
    Offer,
    ProviderCapability,
    WireNames,
    wire_values,
)
from hailuo.model.errors import UNSUPPORTED_TIER, ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase, PreparedInput, SubmitReceipt, TaskState
from providers.http import (
    DEFAULT_TIMEOUT,
    Adapter,
    ProviderHttp,
    Reply,
    classify_status,
    whole_number,
)
from providers.wire import request_body

log = logging.getLogger(__name__)

NAME = "freepik"

#: Freepik lists JPG/JPEG/PNG only (providers.md §1).
FREEPIK_RULES = ImageRules(formats=frozenset({"JPEG", "PNG"}))

#: What this provider accepts and how it spells a request, declared once here and read by the body
#: builder below; ``providers.registry`` collects it. Seed 000, tiers 768p/1080p, the endpoint is
#: the model and the tier; no fast_pretreatment, no WebP; the file's lifetime is not documented:
#: the shortest known one, 1 h, with a fresh URL from a re-query at every try.
CAPABILITY = ProviderCapability(
    name=NAME,
    label="Freepik",
    models=frozenset({"MiniMax-Hailuo-02"}),
    modes=ALL_MODES,
    resolutions=MappingProxyType(
        {"768P": Offer(frozenset({6, 10})), "1080P": Offer(frozenset({6}))}
    ),
    options=frozenset({"prompt_optimizer"}),
    images=FREEPIK_RULES,
    spelling=WireNames(
        camera=Spelling.ENGLISH,
        model=None,
        resolution=None,
        resolution_values=wire_values("768P", "1080P", lower=True),
        duration="duration",
        prompt="prompt",
        first_frame="first_frame_image",
        last_frame="last_frame_image",
        prompt_optimizer="prompt_optimizer",
        fast_pretreatment=None,
        callback="webhook_url",
        image_encoding="base64",
        required=frozenset({"prompt"}),
        resolution_in_path=True,
    ),
    result_lifetime=HOUR,
    # "10 hits/s sustained, 50 hits/s burst" (providers.md "Limits", a third-party reading of
    # docs.freepik.com/ratelimits; the other reading, 50 a minute, counts every endpoint).
    status_per_second=10.0,
    # No price of this provider is in the project's references (providers.md, the seeds)
    # as of 2026-12-07: unknown until a server sets its own (``/hailuo-admin price``).
    prices=MappingProxyType({}),
)
FREEPIK_KEY_HEADER = "x-freepik-api-key"
MAGNIFIC_KEY_HEADER = "x-magnific-api-key"
PATH = "/v1/ai/image-to-video/minimax-hailuo-02-{tier}"

#: Our resolution -> Freepik's tier (the endpoint), and the durations each tier takes.
TIERS = {"768P": "768p", "1080P": "1080p"}
TIER_DURATIONS = {"768p": frozenset({6, 10}), "1080p": frozenset({6})}

#: Freepik requires a prompt even for image-to-video; sent when the member gave none.
DEFAULT_PROMPT = "Animate this image with natural motion."

#: Freepik's status words (1080p OpenAPI ``task`` enum) -> common phase.
_PHASES = {
    "CREATED": Phase.QUEUED,
    "IN_PROGRESS": Phase.RUNNING,
    "COMPLETED": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
}

#: Words that turn Freepik's ambiguous 503 ("down" or "rate-limited") into a rate limit.
_RATE_WORDS = ("rate", "limit", "too many", "quota")


def key_header_for(base_url: str) -> str:
    """``x-magnific-api-key`` on magnific.com hosts, else ``x-freepik-api-key``."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "magnific.com" or host.endswith(".magnific.com"):
        return MAGNIFIC_KEY_HEADER
    return FREEPIK_KEY_HEADER


class FreepikProvider(Adapter):
    name = NAME

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str,
        key_header: str | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.key_header = key_header or key_header_for(base_url)
        http = ProviderHttp(
            session,
            provider=NAME,
            base_url=base_url,
            headers={self.key_header: api_key, "Content-Type": "application/json"},
            timeout=timeout,
        )
        super().__init__(http, api_key)

    # -- submit

    def submit_body(self, job: PreparedInput) -> dict[str, Any]:
        """The JSON body (either tier takes the same one); a pure function of ``job``."""
        return request_body(job, CAPABILITY.spelling, neutral_prompt=DEFAULT_PROMPT)

    def tier_for(self, job: PreparedInput) -> str:
        """The endpoint tier of the spec; Freepik has no 512P and 1080p is 6 s only."""
        tier = TIERS.get(job.spec.resolution)
        if tier is None or job.spec.duration not in TIER_DURATIONS[tier]:
            detail = f"{job.spec.resolution} {job.spec.duration}s is not offered"
            raise self.http.error(ProviderErrorKind.INVALID_REQUEST, "unsupported", detail)
        return tier

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        tier = self.tier_for(job)
        body = self.submit_body(job)
        reply = await self._post(tier, body)
        meta: dict[str, Any] = {"tier": tier}
        if reply.status == 404:
            # The tier's endpoint is gone: this provider cannot make this job as asked,
            # another may. Never another tier: the job's resolution and price are fixed.
            log.warning("freepik: the %s endpoint answered 404; not taking this job", tier)
            raise self.http.error(
                ProviderErrorKind.UNSUPPORTED, UNSUPPORTED_TIER, f"no {tier} endpoint (HTTP 404)"
            )
        if not 200 <= reply.status < 300:
            raise self._status_error(reply)
        data = _inner(reply.body)
        task_id = data.get("task_id") if data is not None else None
        if not task_id:
            # 2xx without a readable task id: the task may well exist; never resend.
            raise self.http.error(
                ProviderErrorKind.UNKNOWN_OUTCOME, None, "2xx reply without data.task_id"
            )
        if isinstance(reply.body, dict) and "data" not in reply.body:
            self._note("submit-flat", "freepik: submit reply had task_id outside 'data'")
        return SubmitReceipt(task_id=str(task_id), meta={**meta, "task_id": str(task_id)})

    async def _post(self, tier: str, body: dict[str, Any]) -> Reply:
        path = PATH.format(tier=tier)
        return await self.http.request("POST", path, json_body=body, idempotent=False)

    # -- follow

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        tier = meta.get("tier")
        if tier not in TIER_DURATIONS:
            if meta:  # an empty meta is a probe (hailuo.cli), not a stored task
                self._note("no-tier", "freepik: task without a stored tier; querying 768p")
            tier = "768p"
        path = f"{PATH.format(tier=tier)}/{task_id}"
        reply = await self.http.request("GET", path, idempotent=True)
        if not 200 <= reply.status < 300:
            raise self._status_error(reply)
        return self.task_state(self.http.object_of(reply))

    def task_state(self, data: dict[str, Any]) -> TaskState:
        """Read a query reply (``{"data": {...}}``) or a webhook body (the inner object)."""
        inner = _inner(data)
        if inner is None:
            raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "no task object")
        raw = str(inner.get("status", ""))
        phase = _PHASES.get(raw.upper())
        if phase is None:
            return self._unknown_status(raw)
        progress = whole_number(inner.get("progress"))
        if progress is not None:
            # [UNKNOWN] not in the schema; one third-party poller reads it.
            self._note("progress", "freepik: reply carries an undocumented 'progress'")
        if phase is Phase.SUCCEEDED:
            url = self._result_of(inner)
            if url is None:
                raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "COMPLETED without URL")
            return TaskState(phase=phase, locator=url, raw_status=raw)
        if phase is Phase.FAILED:
            # The schema has no reason field; log whatever else came, to learn it.
            extra = sorted(set(inner) - {"task_id", "status", "generated"})
            if extra:
                self._note("fail-fields", "freepik: FAILED came with fields %s", extra)
            failure = self.http.error(ProviderErrorKind.UNAVAILABLE, None, "task FAILED")
            return TaskState(phase=phase, failure=failure, raw_status=raw)
        return TaskState(phase=phase, progress=progress, raw_status=raw)

    def _result_of(self, inner: dict[str, Any]) -> str | None:
        """``generated[0]`` (a URL string); also an object with ``url``, seen in 3P code."""
        for key in ("generated", "result"):
            items = inner.get(key)
            if not isinstance(items, list) or not items:
                continue
            first = items[0]
            if isinstance(first, dict):
                first = first.get("url")
            if isinstance(first, str) and first:
                if key != "generated" or isinstance(items[0], dict):
                    self._note(f"result:{key}", "freepik: result found in undocumented %r", key)
                return first
        return None

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        """A fresh ``generated[0]`` from a new query (the TTL is unknown), else the locator."""
        return await self._requery(locator, meta)

    # -- errors

    def _status_error(self, reply: Reply) -> ProviderError:
        """HTTP error -> kind. 402/429 bodies are undocumented; 503 is "down" or "busy"."""
        message = self._message(reply)
        status = reply.status
        kind = classify_status(status)
        if status == 503 and any(word in message.lower() for word in _RATE_WORDS):
            kind = ProviderErrorKind.RATE_LIMITED
        if status in (402, 429) or kind is ProviderErrorKind.BAD_REPLY:
            # [UNKNOWN] shapes: log what came so the table can be made exact.
            self._note(
                f"http:{status}", "freepik: HTTP %d body (undocumented): %s", status, message
            )
        return self.http.error(kind, str(status), f"HTTP {status}: {message}", reply.retry_after())

    def _message(self, reply: Reply) -> str:
        body = reply.body
        text = body.get("message") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("invalid_params"), list):
            names = [p.get("name") for p in body["invalid_params"] if isinstance(p, dict)]
            text = f"{text} {names}"
        return self._clip(str(text) if text is not None else reply.text)


def _inner(body: Any) -> dict[str, Any] | None:
    """The task object: ``data`` of a query reply, or the webhook body itself."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    return data if isinstance(data, dict) else body


#: The class ``providers.registry`` builds for this provider.
ADAPTER = FreepikProvider
