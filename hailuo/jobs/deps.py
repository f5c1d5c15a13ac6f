"""What a worker works with: one frozen record, built once by ``hailuo.assembly``."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hailuo.clock import Clock
from hailuo.jobs.durations import DurationBook
from hailuo.jobs.notify import Notifier
from hailuo.jobs.resilience import Resilience
from hailuo.jobs.steps import WorkerConfig
from hailuo.media.downloads import Downloader
from hailuo.media.shrink import Shrinker
from hailuo.model.capability import Table
from hailuo.model.job import Job
from hailuo.model.provider import PreparedInput, Provider
from hailuo.model.spec import JobSpec
from hailuo.web.metrics import Metrics
from storage.port import Storage


@dataclass(frozen=True)
class WorkerDeps:
    """What a worker works with, built once by ``hailuo.assembly.build_core``.

    The optional parts have the production default when left out: the capability
    tables decide who ``serves`` a spec, each provider gets a fresh ``Resilience``
    (fixed caps from ``submit_caps``), no provider calls back, nothing is shrunk.
    """

    storage: Storage
    providers: Mapping[str, Provider]
    order: tuple[str, ...]
    notifier: Notifier
    downloader: Downloader
    clock: Clock
    rng: random.Random
    metrics: Metrics
    config: WorkerConfig
    prepare: Callable[[Job], Awaitable[PreparedInput]]
    #: Every provider's capability (``providers.registry.TABLE``, passed in by the builder).
    capabilities: Table
    submit_caps: Mapping[str, int | None] | None = None
    #: The owner's status-query budget per provider (``<PROVIDER>_STATUS_PER_SECOND``);
    #: unset ones use the capability's documented figure or the default (``jobs.budget``).
    status_budgets: Mapping[str, float | None] | None = None
    serves: Callable[[str, JobSpec], bool] | None = None
    callback_url: Callable[[str, int], str | None] | None = None
    downloaders: Mapping[str, Downloader] | None = None
    shrinker: Shrinker | None = None
    resilience: Resilience | None = None
    #: Measured run times, for the cards' ETA (a fresh book when left out).
    durations: DurationBook | None = None
    #: Signed image URLs for providers that want URLs (``hailuo.web.images``), if public.
    image_url: Callable[[str, Job, str], str | None] | None = None
