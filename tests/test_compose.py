"""compose.yaml: the single bot by default; the ``scale`` profile's PostgreSQL and shard bots.

No container runtime here, so the file is read as YAML (with compose's ``<<`` merge keys)
and checked for what a wrong edit would silently break: the shard ranges cover each
shard once with one count, every shard bot waits for a healthy PostgreSQL, and each one's
settings pass the bot's own validation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hailuo.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def scaled_bots(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "scale" in service.get("profiles", []) and service.get("build")
    }


def test_shard_compose_default_is_still_the_single_sqlite_bot(compose: dict[str, Any]) -> None:
    single = compose["services"]["hailuo"]
    assert "profiles" not in single  # `docker compose up -d` starts it alone
    assert single["environment"]["HAILUO_DATABASE"].endswith(".sqlite3")
    unprofiled = [n for n, s in compose["services"].items() if not s.get("profiles")]
    assert unprofiled == ["hailuo"]


def test_shard_compose_scale_profile_has_a_healthy_postgres(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["profiles"] == ["scale"]
    assert postgres["image"] == "postgres:16"
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume: the data outlives the container
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres  # reachable by the bots only


def test_shard_compose_bots_split_the_shards_and_wait_for_postgres(
    compose: dict[str, Any],
) -> None:
    bots = scaled_bots(compose)
    assert len(bots) == 2
    counts = {bot["environment"]["HAILUO_SHARD_COUNT"] for bot in bots.values()}
    assert len(counts) == 1  # every process agrees on the count
    covered: list[int] = []
    ports: list[str] = []
    for service in bots.values():
        env = service["environment"]
        assert re.fullmatch(
            r"postgresql://hailuo:[^@]+@postgres(:5432)?/hailuo", env["HAILUO_DATABASE"]
        )
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["stop_grace_period"] == "60s"
        assert service["volumes"][0].split(":")[0] in compose["volumes"]
        ports += [p.rsplit(":", 1)[0] for p in service["ports"]]
        settings = load_settings(
            environ={
                "DISCORD_TOKEN": "t",
                **{k: v for k, v in env.items() if k != "HAILUO_DATABASE"},
            },
            dotenv_path=None,
        )
        assert settings.shard_ids is not None
        covered += settings.shard_ids
    assert sorted(covered) == list(range(int(counts.pop())))  # each shard exactly once
    assert len(set(ports)) == len(ports) and "127.0.0.1:8080" not in ports
