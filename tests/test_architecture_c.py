"""The house's front doors, enforced from the sources (issue 12, items 3 to 5).

- one function builds the core (``hailuo.assembly.build_core``): no other module of
  the program constructs a ``Worker``, a ``JobDesk`` or the services around them;
- the core it returns is frozen and has no optional field to fill in later;
- ``cogs/`` (and ``bot.py``) call the core's services and never import ``storage`` nor reach
  behind the desk into its repositories;
- the core sees the storage port (``storage.port``: ``Storage``, ``UnitOfWork``, one
  protocol per repository), never the SQLite engine, a ``Tx`` or SQL; each repository
  call exists once, taking the caller's unit of work or running in its own.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from hailuo import assembly
from hailuo.jobs.worker import WorkerDeps
from hailuo.model.job import NewJob
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage.db import Database, statements
from storage.jobs import JobRepository
from storage.ledger import LedgerRepository
from tests.pg_server import BOTH_ENGINES

ENGINES = BOTH_ENGINES

ROOT = Path(__file__).resolve().parent.parent
#: The program's own sources (the tests build cores through ``tests/core.py``).
PROGRAM = ("bot.py", "hailuo", "cogs", "providers", "storage")
BUILT_ONCE = {"Worker", "JobDesk", "ApprovalQueue", "JobControls", "ModerationAdmin", "AuditLog"}


def sources(*names: str) -> list[Path]:
    found: list[Path] = []
    for name in names:
        path = ROOT / name
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def constructed(path: Path) -> set[str]:
    """The names called like a constructor in ``path`` (``Worker(...)``, ``x.Worker(...)``)."""
    calls: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in BUILT_ONCE:
                calls.add(name)
    return calls


def test_architecture_c_cogs_never_import_storage() -> None:
    offenders = {
        p.name: sorted(n for n in imported(p) if n.split(".")[0] == "storage")
        for p in sources("cogs")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_architecture_c_the_front_end_never_reaches_behind_the_desk() -> None:
    """``desk.jobs.…``, ``desk.ledger.…``, ``desk.gate.…``: repositories behind the front door."""
    behind = {"jobs", "ledger", "guilds", "blocks", "gate", "approvals", "db", "credits"}
    offenders = []
    for path in sources("cogs", "bot.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in behind
                and isinstance(node.value, ast.Attribute | ast.Name)
                and getattr(node.value, "attr", getattr(node.value, "id", "")) == "desk"
            ):
                offenders.append(f"{path.name}:{node.lineno} desk.{node.attr}")
    assert offenders == []


def test_architecture_c_the_builder_is_the_only_place_that_builds_the_core() -> None:
    builders = {
        str(p.relative_to(ROOT)): sorted(constructed(p))
        for p in sources(*PROGRAM)
        if constructed(p)
    }
    assert builders == {"hailuo/assembly.py": sorted(BUILT_ONCE)}


def test_architecture_c_the_scanner_sees_a_construction() -> None:
    """The rule above is not vacuous: a module that builds a worker is found."""
    assert constructed(ROOT / "hailuo" / "assembly.py") >= {"Worker", "JobDesk"}
    assert constructed(ROOT / "tests" / "core.py") == set()  # the tests go through the builder


def test_architecture_c_bot_and_cli_build_through_the_builder() -> None:
    for path in (ROOT / "bot.py", ROOT / "hailuo" / "cli.py"):
        assert "hailuo.assembly" in imported(path), path.name


@pytest.mark.parametrize("record", [assembly.Core, assembly.Ports, WorkerDeps])
def test_architecture_c_the_built_objects_are_frozen(record: type) -> None:
    assert dataclasses.is_dataclass(record)
    assert record.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_architecture_c_the_core_has_no_optional_field() -> None:
    hints = typing.get_type_hints(assembly.Core)
    optional = [
        name
        for name, hint in hints.items()
        if type(None) in typing.get_args(hint) or hint is type(None)
    ]
    assert optional == []
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(assembly.Core))


# -- the storage port ----------------------------------------------------------------------


def names_used(path: Path) -> set[str]:
    return {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Name | ast.Attribute)
    }


def test_architecture_c_the_core_never_sees_a_tx_or_a_connection() -> None:
    leaks = {"Tx", "Reader", "fetch_one", "fetch_all", "execute", "insert", "statements"}
    offenders = {
        p.name: sorted(leaks & names_used(p))
        for p in sources("hailuo", "cogs", "bot.py")
        if leaks & names_used(p)
    }
    assert offenders == {}


def test_architecture_c_the_core_sees_the_storage_port_not_the_engine() -> None:
    """Only the entry points (the builder, the operator CLI) name the SQLite engine or
    build a repository; every service works with ``storage.port.Storage``."""
    entry_points = {"assembly.py", "cli.py", "doctor.py"}  # doctor opens the file to check it
    offenders = []
    for path in sources("hailuo", "cogs"):
        if path.name in entry_points:
            continue
        if "storage.db" in imported(path):
            offenders.append(f"{path.name} imports storage.db")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name.endswith("Repository"):
                    offenders.append(f"{path.name}:{node.lineno} builds {name}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("storage"):
                offenders += [
                    f"{path.name}:{node.lineno} imports {alias.name}"
                    for alias in node.names
                    if alias.name.endswith("Repository") or alias.name in {"Tx", "Database"}
                ]
    assert offenders == []


def test_architecture_c_each_repository_call_exists_once() -> None:
    """No ``get``/``get_in`` pairs: a call takes the caller's unit of work, or runs in its own."""
    twins = []
    for path in sources("storage"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                methods = {f.name for f in node.body if isinstance(f, ast.AsyncFunctionDef)}
                twins += [f"{node.name}.{m}" for m in methods if m.endswith("_in")]
                twins += [f"{node.name}.{m}" for m in methods if f"{m}_tx" in methods]
    assert twins == []


def _new_job() -> NewJob:
    spec = JobSpec(mode=Mode.TEXT, prompt="a cat")
    return NewJob(guild_id=1, channel_id=2, user_id=3, spec=spec, cost=2, period="2026-12-07")


async def test_architecture_c_a_unit_of_work_commits_or_rolls_back_as_one(db: Database) -> None:
    jobs, ledger = JobRepository(db), LedgerRepository(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as uow:
            job_id = await jobs.create(uow, _new_job(), now=1.0)
            job = await jobs.get(job_id, uow)  # the unit of work sees its own writes
            assert job is not None and job.status is JobStatus.QUEUED
            await jobs.transition(job, JobStatus.CANCELLED, 2.0, reason="test", tx=uow)
            raise RuntimeError("crash before the commit")
    assert await jobs.get(job_id) is None
    assert await ledger.for_job(job_id) == []
    async with db.transaction() as uow:
        job_id = await jobs.create(uow, _new_job(), now=1.0)
        job = await jobs.get(job_id, uow)
        assert job is not None
        await jobs.transition(job, JobStatus.CANCELLED, 2.0, reason="test", tx=uow)
    kinds = [e.kind.value for e in await ledger.for_job(job_id)]
    assert kinds == ["reserve", "refund"]  # the reservation and its settlement, together


def test_architecture_c_a_foreign_unit_of_work_is_refused() -> None:
    """Only this database's own units of work reach its SQL (no duck-typed stand-in)."""

    class Elsewhere:
        def after_commit(self, callback: object) -> None:
            return None

    with pytest.raises(TypeError, match="not a unit of work of this database"):
        statements(Elsewhere())  # type: ignore[arg-type]
