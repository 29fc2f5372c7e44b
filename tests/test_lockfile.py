"""requirements.lock holds every dependency pyproject.toml declares, pinned and hashed.

``ops/scripts/install`` installs only what the lock lists (``pip install --require-hashes``),
then the project with ``--no-deps``: a dependency declared in pyproject.toml but missing from
the lock, or locked at a release the declaration rules out, would be missing or wrong on a
fresh machine while an old ``.venv`` hides it. ``ops/scripts/lock`` fixes both.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"

# The GraphQL engine uses private APIs of these: any release change must be deliberate
# (a pyproject edit, a re-lock and the private-API test), never a side effect of a re-lock.
EXACT_PINS = ("sanic", "strawberry-graphql", "graphql-core")

_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Locked:
    name: NormalizedName
    version: str
    hashes: int
    line: str


def parse_lock(text: str) -> tuple[dict[NormalizedName, Locked], list[str]]:
    """The lock's entries by normalised name, and its problems (unpinned, unhashed, twice)."""
    entries: dict[NormalizedName, Locked] = {}
    problems: list[str] = []
    logical = re.sub(r"\\\n", " ", text)  # join backslash continuations
    for raw in logical.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            problems.append(f"option line in the lock: {line!r}")
            continue
        spec = _HASH.sub("", line).strip()
        hashes = len(_HASH.findall(line))
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        pins = [s for s in requirement.specifier if s.operator == "=="]
        if len(pins) != 1 or len(requirement.specifier) != 1:
            problems.append(f"{name}: not pinned with == ({spec!r})")
            continue
        if hashes == 0:
            problems.append(f"{name}: no --hash")
        if name in entries:
            problems.append(f"{name}: locked twice")
        entries[name] = Locked(name, pins[0].version, hashes, spec)
    return entries, problems


def declared(pyproject: dict[str, object]) -> list[Requirement]:
    """The runtime dependencies and every optional-dependency group."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    requirements = [Requirement(r) for r in project.get("dependencies", [])]
    for group in project.get("optional-dependencies", {}).values():
        requirements.extend(Requirement(r) for r in group)
    return requirements


def missing_or_outside(
    requirements: list[Requirement], entries: dict[NormalizedName, Locked]
) -> list[str]:
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        locked = entries.get(name)
        if locked is None:
            problems.append(f"{name}: declared in pyproject.toml, not in the lock")
        elif not requirement.specifier.contains(locked.version, prereleases=True):
            problems.append(
                f"{name}: locked {locked.version}, pyproject.toml asks {requirement.specifier}"
            )
    return problems


def _lock() -> tuple[dict[NormalizedName, Locked], list[str]]:
    return parse_lock(LOCK.read_text(encoding="utf-8"))


def _pyproject() -> dict[str, object]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def test_every_lock_entry_is_pinned_and_hashed() -> None:
    entries, problems = _lock()
    assert entries, "requirements.lock holds no requirement"
    assert problems == [], "requirements.lock: " + "; ".join(problems)


def test_every_declared_dependency_is_locked_at_an_allowed_release() -> None:
    entries, _ = _lock()
    problems = missing_or_outside(declared(_pyproject()), entries)
    assert problems == [], "re-lock with ops/scripts/lock: " + "; ".join(problems)


@pytest.mark.parametrize("name", EXACT_PINS)
def test_private_api_libraries_are_pinned_exactly(name: str) -> None:
    pins = [r for r in declared(_pyproject()) if canonicalize_name(r.name) == name]
    assert len(pins) == 1, f"{name} must be declared once in pyproject.toml"
    (specifier,) = pins[0].specifier
    assert specifier.operator == "==", f"{name}: pin it with ==, not {specifier}"
    entries, _ = _lock()
    assert entries[canonicalize_name(name)].version == specifier.version


def test_the_checks_catch_an_unhashed_line_and_a_missing_dependency() -> None:
    text = (
        "# header\n"
        "sanic==25.12.1 \\\n"
        f"    --hash=sha256:{'a' * 64}\n"
        "    # via commerce-gateway (pyproject.toml)\n"
        "orjson==3.13.0\n"
        "redis>=8.2 \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        f"async-timeout==5.0.1 ; python_full_version < '3.11.3' --hash=sha256:{'c' * 64}\n"
    )
    entries, problems = parse_lock(text)
    assert sorted(entries) == ["async-timeout", "orjson", "sanic"]
    assert problems == ["orjson: no --hash", "redis: not pinned with == ('redis>=8.2')"]
    wanted = [Requirement("Sanic==25.12.2"), Requirement("ORJSON>=3"), Requirement("uv")]
    assert missing_or_outside(wanted, entries) == [
        "sanic: locked 25.12.1, pyproject.toml asks ==25.12.2",
        "uv: declared in pyproject.toml, not in the lock",
    ]
