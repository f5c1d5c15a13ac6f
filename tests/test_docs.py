"""The documentation cannot drift from the code: every variable read is documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def variables_read_by_settings() -> set[str]:
    text = (ROOT / "hailuo" / "settings.py").read_text()
    names = set(re.findall(r'"((?:DISCORD|HAILUO|FREEPIK)_[A-Z_]+)"', text))
    providers = re.search(r"PROVIDER_NAMES = \(([^)]*)\)", text)
    assert providers is not None
    for name in re.findall(r'"(\w+)"', providers.group(1)):
        for suffix in re.findall(r'f"\{name\.upper\(\)\}(_[A-Z_]+)"', text):
            names.add(name.upper() + suffix)
    return names


def test_env_example_documents_every_variable() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    missing = variables_read_by_settings() - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_readme_lists_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in variables_read_by_settings() if name not in readme}
    assert not missing, f"README.md lacks {sorted(missing)}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in readme and "./scripts/test" in ci
