"""The gates run the real, pinned checkers (installed by gates/run.py on first use): they pass the good
fixtures and fail each deliberately bad one for the reason it was made bad."""

import subprocess
import sys
from pathlib import Path

import pytest

from gates import fixture_sets as fixtures

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.gates

FIXTURES = ROOT / "gates" / "fixtures"
GATES = [sys.executable, "-m", "gates.run"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bad case of gates/fixtures/bad.yaml, written out as rendered stacks (the good render plus a patch)."""
    out = tmp_path_factory.mktemp("bad-fixtures")
    for case in fixtures.bad_cases():
        fixtures.materialize(case, out)
    return out


def gate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [*GATES, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,  # a cold cache builds the checkers first
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize("stack", ["prod", "local"])
def test_good_manifests_pass_every_manifest_gate(stack: str) -> None:
    result = gate("manifests", str(FIXTURES / "good" / stack))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed: kubeconform kube-score polaris policy" in result.stderr
    # The one accepted finding is reported as accepted, not hidden.
    assert "accepted by entry 1 (kube-score container-image-pull-policy on Deployment goapp)" in result.stdout


@pytest.mark.parametrize(
    ("fixture", "gate_name", "expected"),
    [
        ("bad-schema", "kubeconform", "additional properties 'revisionHistoryLimt' not allowed"),
        ("bad-schema", "kubeconform", "containerPort': got string, want null or integer"),
        ("bad-privileged", "kube-score", "BLOCKING kube-score container-security-context-privileged"),
        ("bad-privileged", "polaris", "BLOCKING polaris runAsPrivileged"),
        ("bad-privileged", "polaris", "BLOCKING polaris privilegeEscalationAllowed"),
        (
            "bad-privileged",
            "policy",
            'pod-security-restricted: Deployment goapp-prod/goapp: volume "tmp" uses hostPath',
        ),
        ("bad-no-limits", "kube-score", "BLOCKING kube-score container-resources"),
        ("bad-no-limits", "kube-score", "BLOCKING kube-score pod-probes-identical"),
        ("bad-no-limits", "policy", "container-resources: Deployment goapp-prod/goapp: container"),
        ("bad-no-limits", "policy", "health-probes: Deployment goapp-prod/goapp: container"),
        ("bad-prod-minimums", "policy", "prod-availability: Deployment goapp-prod/goapp: no PodDisruptionBudget"),
        ("bad-prod-minimums", "kube-score", "BLOCKING kube-score deployment-has-poddisruptionbudget"),
        ("bad-route", "kubeconform", "at '/spec/rules/0/backendRefs/0/weight': got string, want null or integer"),
        ("bad-route", "kubeconform", "at '/spec': additional properties 'parentRef' not allowed"),
    ],
)
def test_bad_manifests_fail_the_gate_for_their_defect(bad: Path, fixture: str, gate_name: str, expected: str) -> None:
    result = gate(gate_name, str(bad / fixture / "prod"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout
    assert f"FAILED: {gate_name}" in result.stderr


def test_an_unaccepted_finding_blocks(tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.yaml"
    accepted.write_text("accepted: []\n")
    result = gate("kube-score", str(FIXTURES / "good" / "prod"), env={"GATES_ACCEPTED": str(accepted)})
    assert result.returncode == 1
    assert 'BLOCKING kube-score container-image-pull-policy: Deployment goapp-prod/goapp container "goapp"' in (
        result.stdout
    )


def test_a_stale_acceptance_fails(tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.yaml"
    accepted.write_text(
        (ROOT / "gates" / "accepted-findings.yaml").read_text()
        + """  - tool: polaris
    check: runAsPrivileged
    kind: Deployment
    name: goapp
    container: goapp
    reason: accepted once for a debugging session that is long over, and never removed
    reviewed_by: nobody
    reviewed_on: 2026-01-01
"""
    )
    result = gate("polaris", str(FIXTURES / "good" / "prod"), env={"GATES_ACCEPTED": str(accepted)})
    assert result.returncode == 1
    assert "STALE entry 2 (polaris runAsPrivileged on Deployment goapp)" in result.stdout


def test_dockerfiles_are_linted() -> None:
    assert gate("hadolint", str(FIXTURES / "good" / "docker" / "Dockerfile")).returncode == 0
    result = gate("hadolint", str(FIXTURES / "bad-dockerfile" / "Dockerfile"))
    assert result.returncode == 1
    assert "BLOCKING hadolint DL3007: gates/fixtures/bad-dockerfile/Dockerfile: line 2" in result.stdout


def test_workflows_are_linted() -> None:
    assert gate("actionlint", str(FIXTURES / "good" / "workflows" / "ci.yml")).returncode == 0
    result = gate("actionlint", str(FIXTURES / "bad-workflow" / "ci.yml"))
    assert result.returncode == 1
    assert "BLOCKING actionlint expression: gates/fixtures/bad-workflow/ci.yml: line 10" in result.stdout


def test_a_missing_directory_is_an_error_naming_it() -> None:
    result = gate("kubeconform", "dist/no-such-stack")
    assert result.returncode == 2, "bad input, not a finding"
    assert "dist/no-such-stack is not a directory (expected a rendered stack, dist/<stack>/)" in result.stderr


def test_a_directory_without_manifests_fails(tmp_path: Path) -> None:
    result = gate("kube-score", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path} holds no .yaml file" in result.stderr
