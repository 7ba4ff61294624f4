"""The lock files: every declared dependency is pinned to a version its specifier accepts, and
make, the Dockerfile and CI install from them (reproducible installs)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(lock: str) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line)
        if match:
            found[canonicalize_name(match.group(1))] = Version(match.group(2))
    return found


def declared(*, dev: bool) -> list[Requirement]:
    names = list(PYPROJECT["project"]["dependencies"])
    if dev:
        names += PYPROJECT["project"]["optional-dependencies"]["dev"]
    return [Requirement(n) for n in names]


@pytest.mark.parametrize(
    ("lock", "dev"), [("requirements.lock", False), ("requirements-dev.lock", True)]
)
def test_every_declared_dependency_is_pinned_within_its_specifier(lock: str, dev: bool) -> None:
    pinned = pins(lock)
    for requirement in declared(dev=dev):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} does not pin {name}: run make lock"
        assert pinned[name] in requirement.specifier, (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement.specifier}: run make lock"
        )
    assert "uv pip compile" in (ROOT / lock).read_text().splitlines()[1]


def pulled_in_by(lock: str) -> dict[str, set[str]]:
    """For each pinned package, the packages the lock says need it (`# via ...`)."""
    found: dict[str, set[str]] = {}
    current: str | None = None
    for line in (ROOT / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==", line)
        if match:
            current = canonicalize_name(match.group(1))
            found[current] = set()
            continue
        via = re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9_.\-]+)\s*$", line)
        if via and current is not None and via.group(1) != "via":
            found[current].add(canonicalize_name(via.group(1)))
    return found


def test_the_runtime_lock_holds_no_dev_tools() -> None:
    """A dev-only declaration may be in the runtime lock only as another runtime package's
    dependency (packaging, needed by matplotlib), never for itself."""
    runtime = pins("requirements.lock")
    needed_by = pulled_in_by("requirements.lock")
    for requirement in declared(dev=True)[len(declared(dev=False)) :]:
        name = canonicalize_name(requirement.name)
        if name in runtime:
            assert needed_by[name] and "tikvops" not in needed_by[name], name


def test_make_and_the_dockerfile_install_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK   := requirements-dev.lock" in makefile
    assert "pip install --quiet -r $(LOCK)" in makefile
    assert "--no-deps -e ." in makefile and "deptry ." in makefile
    dockerfile = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    installs = [
        ln for ln in dockerfile.splitlines() if ln.startswith("RUN") and "pip install" in ln
    ]
    assert installs[0].endswith("pip install -r requirements.lock")
    assert all("--no-deps" in ln for ln in installs[1:]) and len(installs) == 2
    assert "make test" in (ROOT / ".ci" / "run").read_text()
