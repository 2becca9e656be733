"""One Pulumi version everywhere: the Python SDK and plugins pinned in requirements.txt must be
exactly the CLI and plugin versions the bootstrap builds from versions.env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path, pattern: str) -> dict[str, str]:
    return {m[0].lower(): m[1] for m in re.findall(pattern, path.read_text(), flags=re.M)}


VERSIONS = pins(REPO_ROOT / "versions.env", r"^([A-Z0-9_]+)=(\S+)")
REQUIREMENTS = pins(REPO_ROOT / "requirements.txt", r"^([A-Za-z0-9_.-]+)==(\S+)")


@pytest.mark.parametrize(
    ("package", "variable"),
    [
        ("pulumi", "pulumi_version"),
        ("pulumi-kubernetes", "pulumi_kubernetes_version"),
        ("pulumi-docker", "pulumi_docker_version"),
    ],
)
def test_python_packages_match_the_engine_and_plugins(package: str, variable: str) -> None:
    assert variable in VERSIONS, f"versions.env lacks {variable.upper()}"
    assert package in REQUIREMENTS, f"requirements.txt does not pin {package} exactly"
    assert REQUIREMENTS[package] == VERSIONS[variable], (
        f"requirements.txt pins {package}=={REQUIREMENTS[package]} but versions.env has "
        f"{variable.upper()}={VERSIONS[variable]}: the CLI/plugin and the SDK must be the same release"
    )


def test_every_requirement_is_pinned_exactly() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    loose = [line for line in lines if "==" not in line]
    assert loose == [], f"unpinned requirements: {loose}"


def test_the_bare_gin_floor_runs_goapps_gin() -> None:
    """The benchmark's bare-Gin floor only tells Gin's cost from goapp's if both build the same Gin release."""
    gin = r"^\s*(?:require\s+)?(github\.com/gin-gonic/gin) (v\S+)"
    goapp = pins(REPO_ROOT / "goapp" / "go.mod", gin)
    floor = pins(REPO_ROOT / "bench" / "baseline" / "go.mod", gin)
    assert "github.com/gin-gonic/gin" in goapp, "goapp/go.mod does not require Gin"
    assert floor == goapp, f"bench/baseline/go.mod has {floor} but goapp/go.mod has {goapp}"
