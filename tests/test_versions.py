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


def test_the_tutorial_peer_runs_goapps_gin() -> None:
    """The tutorial's server (bench/tutorial) is the peer users would pick instead of goapp; the comparison is of
    what goapp adds, not of two Gin releases, only while both build the same Gin."""
    gin = r"^\s*(?:require\s+)?(github\.com/gin-gonic/gin) (v\S+)"
    goapp = pins(REPO_ROOT / "goapp" / "go.mod", gin)
    peer = pins(REPO_ROOT / "bench" / "tutorial" / "go.mod", gin)
    assert "github.com/gin-gonic/gin" in goapp, "goapp/go.mod does not require Gin"
    assert peer == goapp, f"bench/tutorial/go.mod has {peer} but goapp/go.mod has {goapp}: require goapp's Gin"


def test_the_pod_security_evaluator_is_the_clusters_release() -> None:
    """gates/tools/psa judges pods as the cluster's admission does only at the cluster's minor version; the
    Kubernetes modules it builds with are released together, so go.mod requires each at PSA_VERSION."""
    psa, cluster = VERSIONS["psa_version"], VERSIONS["k8s_version"]
    psa_minor = re.fullmatch(r"v0\.(\d+)\.\d+", psa)
    cluster_minor = re.fullmatch(r"v1\.(\d+)\.\d+", cluster)
    assert psa_minor, f"PSA_VERSION={psa} must be a k8s.io staging module version, v0.X.Y"
    assert cluster_minor, f"K8S_VERSION={cluster} must be v1.X.Y"
    assert psa_minor[1] == cluster_minor[1], (
        f"PSA_VERSION={psa} evaluates Pod Security as Kubernetes 1.{psa_minor[1]}, but the cluster is "
        f"K8S_VERSION={cluster}: pin k8s.io/pod-security-admission v0.{cluster_minor[1]}.x"
    )
    required = pins(REPO_ROOT / "gates" / "tools" / "psa" / "go.mod", r"^\s*(?:require\s+)?(k8s\.io/[a-z-]+) (v\S+)")
    released_together = ("k8s.io/pod-security-admission", "k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go")
    assert {"k8s.io/pod-security-admission", "k8s.io/api"} <= set(required), required
    versions = {module: required[module] for module in released_together if module in required}
    assert versions == dict.fromkeys(versions, psa), f"gates/tools/psa/go.mod must require these at {psa}"
