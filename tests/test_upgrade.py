"""Stacks made by the program before the components split upgrade in place: no delete, no replace.

The previous version (UPGRADE_FROM, the last commit with the single Workload component) renders each stack
from its own stack file; then the current program previews against that state with the current stack file.
Every step must be a create (of a genuinely new object), an update or nothing.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

import harness
from engine import RENDER_DIGEST, REPO_ROOT, Workspace, bootstrap_env

pytestmark = pytest.mark.engine

UPGRADE_FROM = "723fb8627be015a0afec445e91736ad23469859b"
"""The last commit whose program registered one goapp:workload:Workload with every object under it."""
FORBIDDEN_STEPS = {"delete", "replace", "create-replacement", "delete-replaced", "discard", "discard-replaced"}


def checkout(commit: str, destination: Path, *paths: str) -> Path:
    """The files of `paths` at `commit`, written under `destination` (the repository's history, no network)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, *paths],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout(UPGRADE_FROM, tmp_path_factory.mktemp("previous"), "infra", "stacks", "goapp")


def steps(preview_json: str) -> list[dict[str, Any]]:
    document = json.loads(preview_json)
    found: list[dict[str, Any]] = document.get("steps") or []
    return found


def render_env(out: Path) -> dict[str, str]:
    return {"GOAPP_RENDER_DIR": str(out), "GOAPP_IMAGE_DIGEST": RENDER_DIGEST, "GOAPP_VERSION": "1.0.0-test"}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_a_stack_of_the_previous_version_upgrades_without_delete_or_replace(
    stack: str, previous: Path, tmp_path: Path
) -> None:
    workspace = Workspace(tmp_path / "project", stack, bootstrap_env(), program=previous)
    workspace.config_file.write_text((previous / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    workspace.pulumi("stack", "init", "--secrets-provider", "passphrase").check()
    workspace.run("up", extra_env=render_env(tmp_path / "rendered")).check()
    before = {r["urn"] for r in workspace.resources()}
    assert any("goapp:workload:Workload$kubernetes:core/v1:PersistentVolumeClaim" in urn for urn in before), (
        "the previous version must have written the old layout, or this test proves nothing"
    )

    workspace.use_program(REPO_ROOT)
    workspace.config_file.write_text((REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    preview = workspace.run("preview", "--json", extra_env=render_env(tmp_path / "rendered")).check()
    planned = steps(preview.out[preview.out.index("{") :])
    forbidden = [(s["op"], s["urn"]) for s in planned if s["op"] in FORBIDDEN_STEPS]
    assert forbidden == [], f"{stack}: the upgrade would delete or replace"
    # The JSON preview lists only what changes: an unchanged claim does not appear at all.
    claims = [s["op"] for s in planned if s["urn"].endswith("::goapp-data")]
    assert claims in ([], ["same"], ["update"]), claims

    workspace.run("up", extra_env=render_env(tmp_path / "rendered")).check()
    after = workspace.resources()
    claim = next(r for r in after if r["type"] == "kubernetes:core/v1:PersistentVolumeClaim")
    assert "goapp:storage:DataVolume$kubernetes:core/v1:PersistentVolumeClaim::goapp-data" in claim["urn"]
    assert not any("goapp:workload:Workload" in r["urn"] for r in after if r["type"].startswith("kubernetes:")), (
        "every object now lives under its concept's component"
    )
