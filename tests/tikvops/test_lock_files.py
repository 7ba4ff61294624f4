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


def test_the_runtime_lock_holds_no_dev_tools() -> None:
    runtime = pins("requirements.lock")
    for requirement in declared(dev=True)[len(declared(dev=False)) :]:
        assert canonicalize_name(requirement.name) not in runtime, requirement.name


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
