"""A few counters and histograms for ``/metrics``, through ``prometheus-client``.

Small on purpose: labels are fixed words (states, providers, error kinds),
never a prompt, a member id or a secret. Jobs by state are read from the
database when scraped, so that number cannot drift from the truth. Each
``Metrics`` has its own ``CollectorRegistry`` (no process-global registry: two
bots in one test process, or a restart, never share counts).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0)
#: How late a scheduled status query went after its due time (budget, backlog, restart).
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0)
SIZE_BUCKETS = (1e5, 1e6, 5e6, 10 * 2**20, 20 * 2**20, 50 * 2**20, 100 * 2**20)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._jobs = Gauge("hailuo_jobs", "Jobs by state.", ["state"], registry=self.registry)
        self._calls = Counter(
            "hailuo_provider_calls",
            "Provider calls by outcome (ok or error kind).",
            ["provider", "call", "outcome"],
            registry=self.registry,
        )
        self._answers = Histogram(
            "hailuo_interaction_answer_seconds",
            "Time from interaction to first answer.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._deliveries = Histogram(
            "hailuo_delivery_bytes",
            "Size of delivered videos, by kind.",
            ["kind"],
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self._shards = Gauge(
            "hailuo_gateway_shard_up",
            "Discord shards of this process: 1 while connected.",
            ["shard"],
            registry=self.registry,
        )

        self._lateness = Histogram(
            "hailuo_status_query_lateness_seconds",
            "Seconds from a scheduled status query's due time to its start.",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )

    def query_lateness(self, seconds: float) -> None:
        self._lateness.observe(max(0.0, seconds))

    def lateness_counts(self) -> dict[float, int]:
        """Scheduled queries so far that started within each bucket's seconds of their due
        time (cumulative, ``inf`` is every one): what a benchmark reads."""
        counts: dict[float, int] = {}
        for family in self._lateness.collect():
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    counts[float(sample.labels["le"])] = int(sample.value)
        return counts

    def provider_call(self, provider: str, call: str, outcome: str) -> None:
        self._calls.labels(provider, call, outcome).inc()

    @property
    def provider_calls(self) -> Mapping[tuple[str, str, str], int]:
        """(provider, call, outcome) -> count so far (what an alert test reads)."""
        counts: dict[tuple[str, str, str], int] = {}
        for family in self._calls.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = sample.labels
                    key = (labels["provider"], labels["call"], labels["outcome"])
                    counts[key] = int(sample.value)
        return _Counts(counts)

    def delivery(self, kind: str, size: int) -> None:
        self._deliveries.labels(kind).observe(size)

    def interaction_answered(self, seconds: float) -> None:
        self._answers.observe(seconds)

    def render(
        self, jobs_by_state: dict[str, int], shards: Mapping[int, bool] | None = None
    ) -> str:
        """The exposition text; the jobs gauge is set from the database's count at each scrape,
        the shards' from the gateway's state then."""
        self._jobs.clear()
        for state, count in sorted(jobs_by_state.items()):
            self._jobs.labels(state).set(count)
        self._shards.clear()
        for shard, up in sorted((shards or {}).items()):
            self._shards.labels(str(shard)).set(1 if up else 0)
        return generate_latest(self.registry).decode("utf-8")


class _Counts(dict[tuple[str, str, str], int]):
    """A count never seen reads as 0, as the old ``defaultdict`` did."""

    def __missing__(self, key: tuple[str, str, str]) -> int:
        return 0
