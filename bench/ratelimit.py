"""The submission limiter's throughput under rate-limit storms and sprinkles (simulated time).

Prints one JSON object: for each case, the submissions a provider accepted per minute
(the allowed rate is 10), the rate-limit answers per minute, and the most requests sent
in any 60 s window. Run: ``python -m bench.ratelimit``.
"""

from __future__ import annotations

import json
import logging

from hailuo.jobs.limiter import SubmitLimiter
from tests.ratelimit_model import ModelProvider, drive, most_in_a_window
from tests.support import FakeClock

STORM = (180.0, 360.0)
#: name: (fixed cap, storm, sprinkle); the provider itself allows 10 a minute.
CASES: dict[str, tuple[int | None, tuple[float, float] | None, float]] = {
    "fixed_10_storm_then_calm": (10, STORM, 0.0),
    "learned_10_storm_then_calm": (None, STORM, 0.0),
    "fixed_10_sprinkle_10pct": (10, None, 0.1),
    "learned_10_sprinkle_10pct": (None, None, 0.1),
}


def main() -> None:
    logging.getLogger("hailuo.jobs.resilience").setLevel(logging.ERROR)
    out: dict[str, object] = {}
    for name, (fixed, storm, sprinkle) in CASES.items():
        clock = FakeClock()
        limiter = SubmitLimiter(clock, fixed=fixed)
        provider = ModelProvider(clock, limit=10, storm=storm or (0.0, 0.0), sprinkle=sprinkle)
        run = drive(limiter, provider, clock, minutes=20, demand=30)
        per_minute = [run.accepted_between(60 * m, 60 * (m + 1)) for m in range(20)]
        refused = [
            sum(1 for t in run.refused if run.started + 60 * m < t <= run.started + 60 * (m + 1))
            for m in range(20)
        ]
        entry: dict[str, object] = {
            "accepted_per_minute": per_minute,
            "rate_limited_per_minute": refused,
            "mean_accepted_per_minute": round(run.accepted_between(60, 1200) / 19, 2),
            "most_sent_in_60s": most_in_a_window(run.sent),
        }
        if storm is not None:
            calm = storm[1]
            entry["accepted_in_second_minute_of_calm"] = run.accepted_between(calm + 60, calm + 120)
        out[name] = entry
    print(json.dumps({"ratelimit": out}, indent=1))


if __name__ == "__main__":
    main()
