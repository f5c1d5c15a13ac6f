"""The layer boundaries of the design, enforced mechanically (style.md #17).

- ``hailuo/`` and ``providers/`` never import discord: Discord is one front end of the core;
- only ``storage/`` imports aiosqlite or holds SQL;
- ``providers/`` know nothing of quotas, members or Discord (no storage, no cogs);
- ``cogs/`` hold no SQL and call no provider directly.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("package", ["hailuo", "providers", "storage"])
def test_the_core_never_imports_discord(package: str) -> None:
    offenders = [p.name for p in modules(package) if "discord" in map(top, imports_of(p))]
    assert offenders == []


@pytest.mark.parametrize("package", ["hailuo", "providers", "cogs"])
def test_only_storage_talks_to_sqlite(package: str) -> None:
    offenders = [
        p.name for p in modules(package) if {"aiosqlite", "sqlite3"} & set(map(top, imports_of(p)))
    ]
    assert offenders == []


def test_providers_know_nothing_of_storage_or_discord_front_end() -> None:
    offenders = [
        p.name
        for p in modules("providers")
        if {"storage", "cogs", "bot"} & set(map(top, imports_of(p)))
    ]
    assert offenders == []


def test_cogs_call_no_provider_adapter() -> None:
    adapters = {f"providers.{n}" for n in ("minimax", "freepik", "novita", "odkkk", "gptge")}
    offenders = [p.name for p in modules("cogs") if adapters & imports_of(p)]
    assert offenders == []


@pytest.mark.parametrize("package", ["hailuo", "providers", "cogs"])
def test_no_sql_outside_storage(package: str) -> None:
    words = ("SELECT ", "INSERT INTO", "DELETE FROM", "CREATE TABLE")
    offenders = [
        p.name for p in modules(package) if any(w in p.read_text(encoding="utf-8") for w in words)
    ]
    assert offenders == []


# --- issue 12: the house as it reads from the tree ------------------------------------------
#
# - storage/ and providers/ import only the model floor (hailuo.model) of the core;
# - the model floor imports nothing of the project but itself (no catalog, no I/O layers);
# - hailuo/ never imports providers/ (the wiring hands adapters and the capability table in),
#   except hailuo/assembly.py (the one builder of the core), hailuo/cli.py and
#   hailuo/doctor.py, the CLI's wiring as bot.py is the bot's;
# - cogs/ never import storage/;
# - nothing imports cogs or bot, except bot.py (and cogs themselves, and cogs' type-only
#   import of bot);
# - no module-global registry filled at run time;
# - no module over 400 lines except the catalogs (data tables);
# - each provider's capability is the only copy of its facts.

PROJECT = ("hailuo", "providers", "storage", "cogs", "bot")
WIRING = {
    ROOT / "hailuo" / "assembly.py",
    ROOT / "hailuo" / "cli.py",
    ROOT / "hailuo" / "doctor.py",
}
DATA_TABLES = {
    ROOT / "hailuo" / "i18n" / "messages.py",
    ROOT / "hailuo" / "i18n" / "messages_zh.py",
}
MAX_LINES = 400


def runtime_imports_of(path: Path) -> set[str]:
    """Imports that run: those under ``if TYPE_CHECKING:`` are annotations only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def project_files() -> list[Path]:
    return [p for pkg in ("hailuo", "providers", "storage", "cogs") for p in modules(pkg)] + [
        ROOT / "bot.py"
    ]


@pytest.mark.parametrize("package", ["storage", "providers"])
def test_architecture_storage_and_providers_import_only_the_model_floor(package: str) -> None:
    offenders = {
        rel(p): sorted(
            name
            for name in imports_of(p)
            if top(name) == "hailuo" and name != "hailuo" and not name.startswith("hailuo.model")
        )
        for p in modules(package)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_architecture_the_model_floor_imports_nothing_above_it() -> None:
    offenders = {
        rel(p): sorted(
            name
            for name in imports_of(p)
            if top(name) in PROJECT and not name.startswith("hailuo.model")
        )
        for p in modules("hailuo/model")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert all("discord" not in map(top, imports_of(p)) for p in modules("hailuo/model"))


def test_architecture_the_core_never_imports_providers_or_discord() -> None:
    offenders = [
        rel(p)
        for p in modules("hailuo")
        if p not in WIRING and {"providers", "discord"} & set(map(top, imports_of(p)))
    ]
    assert offenders == []


def test_architecture_cogs_never_import_storage() -> None:
    offenders = [rel(p) for p in modules("cogs") if "storage" in map(top, imports_of(p))]
    assert offenders == []


def test_architecture_nothing_imports_cogs_or_bot() -> None:
    offenders = []
    for p in project_files():
        tops = set(map(top, runtime_imports_of(p)))
        allowed = {"cogs"} if (p == ROOT / "bot.py" or rel(p).startswith("cogs/")) else set()
        if ({"cogs", "bot"} - allowed) & tops:
            offenders.append(rel(p))
    assert offenders == []


_MUTATORS = {
    "append", "add", "update", "setdefault", "pop", "clear", "extend", "remove", "discard",
    "insert", "popitem",
}  # fmt: skip
_CONTAINERS = {"dict", "list", "set", "defaultdict", "WeakKeyDictionary", "WeakValueDictionary"}


def _module_containers(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is None:
            continue
        empty = isinstance(value, ast.Dict | ast.List | ast.Set) and not getattr(
            value, "keys", getattr(value, "elts", [1])
        )
        called = isinstance(value, ast.Call) and (
            getattr(value.func, "id", None) in _CONTAINERS
            or getattr(value.func, "attr", None) in _CONTAINERS
        )
        if empty or called:
            found.update(t.id for t in targets if isinstance(t, ast.Name))
    return found


def filled_at_run_time(path: Path) -> list[str]:
    """Module-level containers that a function fills or empties (a run-time registry)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    containers = _module_containers(tree)
    hits: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in containers
            ):
                hits.add(node.func.value.id)
            if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                targets = (
                    node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                )
                for t in targets:
                    if (
                        isinstance(t, ast.Subscript)
                        and isinstance(t.value, ast.Name)
                        and t.value.id in containers
                    ):
                        hits.add(t.value.id)
    return sorted(hits)


def test_architecture_no_module_global_registry_filled_at_run_time() -> None:
    offenders = {rel(p): filled_at_run_time(p) for p in project_files()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_architecture_the_registry_check_sees_a_run_time_registry(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import weakref\n_sinks = weakref.WeakKeyDictionary()\n"
        "def register(db, sink):\n    _sinks[db] = sink\n"
        "TABLE = {'fixed': 1}\n"
    )
    assert filled_at_run_time(sample) == ["_sinks"]


def test_architecture_no_module_over_400_lines_but_the_catalogs() -> None:
    lengths = {rel(p): len(p.read_text(encoding="utf-8").splitlines()) for p in project_files()}
    over = {
        name: n for name, n in lengths.items() if n > MAX_LINES and ROOT / name not in DATA_TABLES
    }
    assert over == {}


def test_architecture_every_folder_of_the_core_says_what_it_holds_and_may_import() -> None:
    for init in (ROOT / "hailuo").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, rel(init)


# --- one home per provider ------------------------------------------------------------------


def test_architecture_each_provider_capability_is_declared_once_in_its_own_module() -> None:
    from providers import registry

    for name, capability in registry.TABLE.items():
        module = importlib.import_module(f"providers.{name}")
        assert module.CAPABILITY is capability
        assert module.NAME == name == capability.name
        assert registry.ADAPTERS.get(name, module.ADAPTER) is module.ADAPTER
    # The records are built in the providers' modules only: nowhere else constructs one.
    builders = ("ProviderCapability(", "WireNames(", "Offer(")
    elsewhere = [
        rel(p)
        for p in project_files()
        if not rel(p).startswith("providers/")
        and any(b in p.read_text(encoding="utf-8") for b in builders)
        and p != ROOT / "hailuo" / "model" / "capability.py"
    ]
    assert elsewhere == []


def test_architecture_no_provider_fact_lives_outside_its_module() -> None:
    """A provider's name next to its data (a label, a lifetime, a spelling) is in its own file.

    The core may name a provider only where the name itself is the fact: the settings'
    variable names and default URLs (``hailuo/settings.py``) and Freepik's webhook route
    (``hailuo/web/callbacks.py``).
    """
    from providers import registry

    names = set(registry.TABLE) - {"demo"}
    labels = {cap.label for cap in registry.TABLE.values()} - names - {"demo"}
    allowed = {ROOT / "hailuo" / "settings.py", ROOT / "hailuo" / "web" / "callbacks.py"}
    offenders: dict[str, list[str]] = {}
    for p in project_files():
        if p in allowed or rel(p) in {f"providers/{n}.py" for n in names}:
            continue
        if rel(p).startswith("hailuo/i18n/"):
            continue  # the catalogs name providers in sentences, with no data
        tree = ast.parse(p.read_text(encoding="utf-8"))
        literals = {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        hits = sorted((names | labels) & literals)
        if hits:
            offenders[rel(p)] = hits
    assert offenders == {}


def test_architecture_the_body_builder_reads_the_capability_names() -> None:
    """Rename a field in a capability and the body follows: the names live only there."""
    from dataclasses import replace

    from hailuo.model.provider import PreparedInput
    from hailuo.model.spec import JobSpec, Mode
    from providers import registry
    from providers.wire import request_body

    job = PreparedInput(
        spec=JobSpec(mode=Mode.FIRST_LAST, prompt="a cat [Pan left]"),
        first_frame="data:image/png;base64,AAAA",
        last_frame="data:image/png;base64,BBBB",
        callback_url="https://bot.example/cb",
    )
    wire = replace(
        registry.TABLE["minimax"].spelling,
        model=None,
        duration="params.seconds",
        first_frame="frames[0]",
        last_frame="frames[1]",
        image_encoding="base64",
    )
    body = request_body(job, wire)
    assert "model" not in body and body["params"] == {"seconds": 6}
    assert body["frames"] == ["AAAA", "BBBB"]
    assert body["callback_url"] == "https://bot.example/cb"
    chinese = request_body(job, replace(wire, camera=registry.spelling_for("gptge")))
    assert chinese["prompt"].endswith("[左摇]")


def test_architecture_the_settings_name_the_registry_providers_in_its_order() -> None:
    """The settings keep their variable names (``MINIMAX_API_KEY``...) in ``hailuo/settings.py``
    (the core does not import providers); the list cannot drift from the registry."""
    from hailuo.settings import DEFAULT_BASE_URLS, DEMO, PROVIDER_NAMES
    from providers import registry

    assert (*PROVIDER_NAMES, DEMO) == tuple(registry.TABLE)
    assert set(DEFAULT_BASE_URLS) == set(registry.ADAPTERS) == set(PROVIDER_NAMES)
