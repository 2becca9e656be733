"""The accepted-findings file: its schema holds every acceptance to one named check on one named target."""

from pathlib import Path
from typing import Any

import pytest

from gates import findings

ROOT = Path(__file__).resolve().parents[2]

ENTRY = """accepted:
  - tool: kube-score
    check: container-image-pull-policy
    kind: Deployment
    name: goapp
    container: goapp
    reason: digest-pinned images make IfNotPresent as safe as Always, without the registry dependency
    reviewed_by: platform
    reviewed_on: 2026-11-25
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accepted.yaml"
    path.write_text(text)
    return path


def test_the_project_file_is_valid() -> None:
    entries = findings.load_accepted(ROOT / "gates" / "accepted-findings.yaml")
    assert entries
    assert all(len(e.reason) >= findings.MIN_REASON for e in entries)


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("name: goapp\n", "name: '*'\n", "name must be one exact, non-empty name (no wildcards"),
        ("check: container-image-pull-policy", "check: container-*", "check must be one exact"),
        (
            "    reason: digest-pinned images make IfNotPresent as safe as Always, without the registry dependency\n",
            "    reason: ok\n",
            "reason must explain the acceptance in at least 40 characters",
        ),
        ("    reviewed_by: platform\n", "", "missing reviewed_by"),
        ("    reviewed_on: 2026-11-25\n", "    reviewed_on: soon\n", "reviewed_on must be a date"),
        ("tool: kube-score", "tool: trivy", "tool 'trivy' is not one of kube-score, polaris, hadolint, actionlint"),
        ("    container: goapp\n", "    container: goapp\n    severity: low\n", "unknown keys severity"),
        ("    container: goapp\n", "    container: goapp\n    stacks: []\n", "stacks must be a non-empty list"),
    ],
)
def test_schema_errors_name_the_entry_and_rule(tmp_path: Path, old: str, new: str, error: str) -> None:
    assert old in ENTRY
    with pytest.raises(findings.AcceptedFindingsError, match="entry 1: ") as raised:
        findings.load_accepted(write(tmp_path, ENTRY.replace(old, new)))
    assert error in str(raised.value)


def test_file_tools_name_a_file_not_an_object(tmp_path: Path) -> None:
    text = """accepted:
  - tool: hadolint
    check: DL3007
    kind: Deployment
    file: goapp/Dockerfile
    reason: a made-up acceptance used to show that file tools take a file and nothing else
    reviewed_by: platform
    reviewed_on: 2026-11-25
"""
    with pytest.raises(findings.AcceptedFindingsError, match="unknown keys kind; a hadolint entry has"):
        findings.load_accepted(write(tmp_path, text))


def test_duplicates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(findings.AcceptedFindingsError, match="entry 2: duplicates an earlier entry"):
        findings.load_accepted(write(tmp_path, ENTRY + ENTRY.split("\n", 1)[1]))


def _kube_score(container: str, grade: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "type_meta": {"kind": "Deployment", "apiVersion": "apps/v1"},
            "object_meta": {"name": "goapp", "namespace": "goapp-prod"},
            "checks": [
                {
                    "check": {"id": "container-image-pull-policy", "name": "Container Image Pull Policy"},
                    "grade": grade,
                    "skipped": False,
                    "comments": [{"path": container, "summary": "ImagePullPolicy is not set to Always"}],
                }
            ],
        }
    ]


def test_an_acceptance_covers_only_its_container(tmp_path: Path) -> None:
    accepted = findings.load_accepted(write(tmp_path, ENTRY))
    lines, problems = findings.judge(findings.kube_score_findings(_kube_score("goapp")), accepted, "kube-score", "prod")
    assert problems == []
    assert len(lines) == 1
    _, problems = findings.judge(findings.kube_score_findings(_kube_score("sidecar")), accepted, "kube-score", "prod")
    assert problems[0].startswith(
        'BLOCKING kube-score container-image-pull-policy: Deployment goapp-prod/goapp container "sidecar"'
    )
    assert problems[1].startswith("STALE entry 1")


def test_warnings_do_not_block() -> None:
    assert findings.kube_score_findings(_kube_score("goapp", grade=5)) == []


def test_an_acceptance_limited_to_stacks_applies_only_there(tmp_path: Path) -> None:
    text = ENTRY.replace("    container: goapp\n", "    container: goapp\n    stacks: [local]\n")
    accepted = findings.load_accepted(write(tmp_path, text))
    found = findings.kube_score_findings(_kube_score("goapp"))
    assert findings.judge(found, accepted, "kube-score", "local")[1] == []
    assert findings.judge(found, accepted, "kube-score", "prod")[1][0].startswith("BLOCKING")


def test_polaris_findings_are_read_at_every_level() -> None:
    failed = {"Success": False, "Severity": "danger", "Message": "bad"}
    report = {
        "Results": [
            {
                "Kind": "Deployment",
                "Name": "goapp",
                "Namespace": "goapp-prod",
                "Results": {"deploymentMissingReplicas": {**failed, "Severity": "warning"}},
                "PodResult": {
                    "Results": {"hostIPCSet": failed},
                    "ContainerResults": [{"Name": "goapp", "Results": {"runAsPrivileged": failed}}],
                },
            }
        ]
    }
    found = findings.polaris_findings(report)
    assert [(f.check, f.container) for f in found] == [("hostIPCSet", None), ("runAsPrivileged", "goapp")]
