"""Stacks made by the program before the components split upgrade in place: no delete, no replace.

The previous version (UPGRADE_FROM, the last commit with the single Workload component) renders each stack
from its own stack file; then the current program previews against that state with the current stack file.
Every step must be a create (of a genuinely new object), an update or nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import harness
from engine import FORBIDDEN_STEPS, RENDER_DIGEST, REPO_ROOT, UPGRADE_FROM, Workspace, checkout, toolchain

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout(UPGRADE_FROM, tmp_path_factory.mktemp("previous"), "infra", "stacks", "goapp")


def render_env(out: Path) -> dict[str, str]:
    return {"GOAPP_RENDER_DIR": str(out), "GOAPP_IMAGE_DIGEST": RENDER_DIGEST, "GOAPP_VERSION": "1.0.0-test"}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_a_stack_of_the_previous_version_upgrades_without_delete_or_replace(
    stack: str, previous: Path, tmp_path: Path
) -> None:
    workspace = Workspace(tmp_path / "project", stack, toolchain(), program=previous)
    workspace.config_file.write_text((previous / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    workspace.init()
    workspace.run("up", env=render_env(tmp_path / "rendered")).check()
    before = {r["urn"] for r in workspace.resources()}
    assert any("goapp:workload:Workload$kubernetes:core/v1:PersistentVolumeClaim" in urn for urn in before), (
        "the previous version must have written the old layout, or this test proves nothing"
    )

    workspace.use_program(REPO_ROOT)
    workspace.config_file.write_text((REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    planned = workspace.preview_steps(env=render_env(tmp_path / "rendered"))
    forbidden = [(op, urn) for op, urn in planned if op in FORBIDDEN_STEPS]
    assert forbidden == [], f"{stack}: the upgrade would delete or replace"
    assert any(op == "create" for op, _ in planned), "the new components are created, or nothing was compared"
    claims = [op for op, urn in planned if urn.endswith("::goapp-data")]
    assert claims in ([], ["update"]), claims

    workspace.run("up", env=render_env(tmp_path / "rendered")).check()
    after = workspace.resources()
    claim = next(r for r in after if r["type"] == "kubernetes:core/v1:PersistentVolumeClaim")
    assert "goapp:storage:DataVolume$kubernetes:core/v1:PersistentVolumeClaim::goapp-data" in claim["urn"]
    assert not any("goapp:workload:Workload" in r["urn"] for r in after if r["type"].startswith("kubernetes:")), (
        "every object now lives under its concept's component"
    )
