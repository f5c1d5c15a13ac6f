"""The prepared image of a job at a signed URL, for providers whose image fields take URLs.

odkkk documents ``image_urls`` as URLs; a data URL may be refused there
(``image_processing_error``). With ``HAILUO_PUBLIC_URL`` set, the bot serves the
image it prepared and stored with the job itself, on the public side of its
HTTP server (``hailuo.web.server``), at

    GET {public}/images/{job}/{role}/{expires}/{mac}

``mac`` is the install's HMAC (``CallbackTokens.sign``) of job, role and expiry,
so a URL cannot be guessed or altered. It expires with the job: it serves only
while the job is in a provider's hands (``submitting``, ``submitted``,
``running``) and never after ``expires`` (``IMAGE_URL_SECONDS`` from when the
URL was made, an upper bound). Anything else is a bare 404: the route tells a
stranger nothing, not even whether the job exists.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from hailuo.clock import Clock
from hailuo.model.capability import Table
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from hailuo.web.callbacks import CallbackTokens
from storage.port import JobStore

log = logging.getLogger(__name__)

#: The longest a signed image URL lives; the job's end takes it down sooner.
IMAGE_URL_SECONDS = 6 * 3600.0
#: The states in which a provider may still fetch the job's image.
SERVING = frozenset({JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING})
ROLES = ("first", "last")
_PATH = "/images/{job}/{role}/{expires}/{mac}"
_NUMBER = re.compile(r"[0-9]{1,18}", re.ASCII)


class ImageLinks:
    """Signs image URLs for the providers that want URLs, and serves them."""

    def __init__(
        self,
        tokens: CallbackTokens,
        jobs: JobStore,
        clock: Clock,
        public_url: str,
        capabilities: Table,
        *,
        lifetime: float = IMAGE_URL_SECONDS,
    ) -> None:
        self.tokens = tokens
        self.jobs = jobs
        self.clock = clock
        self.base = public_url.rstrip("/")
        self.capabilities = capabilities
        self.lifetime = lifetime

    def url(self, provider: str, job: Job, role: str) -> str | None:
        """The signed URL of the job's ``role`` image for ``provider``; None when the
        provider takes data URLs (its capability does not ask for URLs)."""
        cap = self.capabilities.get(provider)
        if cap is None or not cap.images_as_url or role not in ROLES:
            return None
        expires = int(self.clock() + self.lifetime)
        mac = self.tokens.sign(_signed_text(job.id, role, expires))
        return f"{self.base}/images/{job.id}/{role}/{expires}/{mac}"

    def mount(self, app: web.Application) -> None:
        app.router.add_get(_PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        info = request.match_info
        job_id, role, expires = info["job"], info["role"], info["expires"]
        if not (_NUMBER.fullmatch(job_id) and _NUMBER.fullmatch(expires)) or role not in ROLES:
            raise web.HTTPNotFound()
        if not self.tokens.signed(_signed_text(int(job_id), role, int(expires)), info["mac"]):
            raise web.HTTPNotFound()
        if self.clock() >= int(expires):
            raise web.HTTPNotFound()
        job = await self.jobs.get(int(job_id))
        if job is None or job.status not in SERVING:
            raise web.HTTPNotFound()  # the job is over: its URL with it
        image = (await self.jobs.images(job.id)).get(role)
        if image is None:
            raise web.HTTPNotFound()
        log.info("served the %s image of job %d", role, job.id)
        return web.Response(
            body=image.data,
            content_type=image.mime,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )


def _signed_text(job_id: int, role: str, expires: int) -> str:
    return f"image:{job_id}:{role}:{expires}"
