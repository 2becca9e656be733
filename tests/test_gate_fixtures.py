"""gates/fixture_sets.py: bad fixtures are small, checked changes to the good renders; stale good sets are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gates import fixture_sets as fixtures

GOOD_PROD = fixtures.GOOD / "prod" / fixtures.MANIFESTS


def objects(directory: Path) -> dict[str, Any]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


@pytest.mark.parametrize("case", sorted(fixtures.bad_cases()))
def test_each_bad_case_is_the_good_render_with_a_small_change(case: str, tmp_path: Path) -> None:
    written = fixtures.materialize(case, tmp_path) / fixtures.MANIFESTS
    bad, good = objects(written), objects(GOOD_PROD)
    changed = [name for name in good if bad.get(name) != good[name]]
    assert 1 <= len(changed) <= 2, f"{case} changes {changed}: one deliberate defect, not a rewrite"
    for name in bad.keys() & good.keys():
        if name not in changed:
            assert bad[name] == good[name]
    assert (written / changed[0]).read_text().startswith("# Deliberately bad")


def test_a_case_names_what_it_breaks(tmp_path: Path) -> None:
    written = objects(fixtures.materialize("bad-privileged", tmp_path) / fixtures.MANIFESTS)
    (deployment,) = [o for o in written.values() if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["privileged"] is True
    assert deployment["spec"]["template"]["spec"]["volumes"][1] == {"name": "tmp", "hostPath": {"path": "/tmp"}}
    minimums = objects(fixtures.materialize("bad-prod-minimums", tmp_path) / fixtures.MANIFESTS)
    assert not [o for o in minimums.values() if o["kind"] == "PodDisruptionBudget"]


def test_a_patch_that_no_longer_fits_the_render_fails_loudly() -> None:
    case = {"changes": [{"kind": "Deployment", "patch": [{"op": "test", "path": "/spec/replicas", "value": 99}]}]}
    good = objects(GOOD_PROD)
    with pytest.raises(fixtures.FixtureError, match="Deployment in apps_v1-deployment"):
        fixtures.apply_case(case, good)
    with pytest.raises(fixtures.FixtureError, match="no CronJob in the good set"):
        fixtures.apply_case({"changes": [{"kind": "CronJob", "remove": True}]}, good)


def test_unknown_cases_are_named(tmp_path: Path) -> None:
    with pytest.raises(fixtures.FixtureError, match=r"unknown bad case .bad-nothing.; gates/fixtures/bad\.yaml has"):
        fixtures.materialize("bad-nothing", tmp_path)


def test_stale_good_sets_are_named(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "prod" / fixtures.MANIFESTS).mkdir(parents=True)
    for path in GOOD_PROD.glob("*.yaml"):
        (dist / "prod" / fixtures.MANIFESTS / path.name).write_text(path.read_text())
    assert fixtures.stale(dist, ["prod"]) == []
    deployment = next((dist / "prod" / fixtures.MANIFESTS).glob("apps_v1-deployment-*.yaml"))
    deployment.write_text(deployment.read_text().replace("maxSurge: 1", "maxSurge: 2"))
    (dist / "prod" / fixtures.MANIFESTS / "v1-configmap-extra.yaml").write_text("kind: ConfigMap\n")
    secret = dist / "prod" / fixtures.MANIFESTS / "v1-secret-goapp-prod-goapp-secret-env.yaml"
    secret.write_text("kind: Secret\nstringData: {TOKEN: plaintext}\n")
    assert fixtures.stale(dist, ["prod"]) == [
        "prod: v1-configmap-extra.yaml is rendered but not in the fixture",
        f"prod: {deployment.name} differs from the render",
    ], "Secrets are never part of a fixture"
    assert fixtures.stale(dist, ["local"])[0].startswith("local: nothing rendered")
