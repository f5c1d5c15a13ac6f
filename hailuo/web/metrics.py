"""A few counters and histograms, rendered in the Prometheus text format for ``/metrics``.

Small on purpose: labels are fixed words (states, providers, error kinds),
never a prompt, a member id or a secret. Jobs by state are read from the
database when scraped, so that number cannot drift from the truth.
"""

from __future__ import annotations

from collections import defaultdict

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0)
SIZE_BUCKETS = (1e5, 1e6, 5e6, 10 * 2**20, 20 * 2**20, 50 * 2**20, 100 * 2**20)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def render(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        lines = [
            f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {count}'
            for bound, count in zip(self.buckets, self.counts, strict=True)
        ]
        lines.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        suffix = f"{{{labels}}}" if labels else ""
        lines.append(f"{name}_sum{suffix} {self.sum:g}")
        lines.append(f"{name}_count{suffix} {self.total}")
        return lines


class Metrics:
    def __init__(self) -> None:
        self.provider_calls: dict[tuple[str, str, str], int] = defaultdict(int)
        self.deliveries: dict[str, Histogram] = {}
        self.answer_latency = Histogram(LATENCY_BUCKETS)

    def provider_call(self, provider: str, call: str, outcome: str) -> None:
        self.provider_calls[(provider, call, outcome)] += 1

    def delivery(self, kind: str, size: int) -> None:
        self.deliveries.setdefault(kind, Histogram(SIZE_BUCKETS)).observe(size)

    def interaction_answered(self, seconds: float) -> None:
        self.answer_latency.observe(seconds)

    def render(self, jobs_by_state: dict[str, int]) -> str:
        out = [
            "# HELP hailuo_jobs Jobs by state.",
            "# TYPE hailuo_jobs gauge",
        ]
        out += [f'hailuo_jobs{{state="{s}"}} {n}' for s, n in sorted(jobs_by_state.items())]
        out += [
            "# HELP hailuo_provider_calls_total Provider calls by outcome (ok or error kind).",
            "# TYPE hailuo_provider_calls_total counter",
        ]
        out += [
            f'hailuo_provider_calls_total{{provider="{p}",call="{c}",outcome="{o}"}} {n}'
            for (p, c, o), n in sorted(self.provider_calls.items())
        ]
        out += [
            "# HELP hailuo_interaction_answer_seconds Time from interaction to first answer.",
            "# TYPE hailuo_interaction_answer_seconds histogram",
        ]
        out += self.answer_latency.render("hailuo_interaction_answer_seconds")
        out += [
            "# HELP hailuo_delivery_bytes Size of delivered videos, by kind.",
            "# TYPE hailuo_delivery_bytes histogram",
        ]
        for kind, hist in sorted(self.deliveries.items()):
            out += hist.render("hailuo_delivery_bytes", f'kind="{kind}"')
        return "\n".join(out) + "\n"
