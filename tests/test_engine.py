"""The real engine, offline: render, preview, the contract through the CLI, secrets in state.

These run the Pulumi CLI, the Python language host and the kubernetes plugin built by
tools/pulumi/bootstrap.sh (`make engine-test` bootstraps first).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from engine import RENDER_DIGEST, REPO_ROOT, Workspace, stack_command, toolchain
from ops.toolchain import Toolchain

pytestmark = pytest.mark.engine

# Fixed stamps: the render and the no-change preview must not see two different commits.
RENDER = {"GOAPP_IMAGE_DIGEST": RENDER_DIGEST, "GOAPP_VERSION": "1.0.0-test", "GOAPP_COMMIT": "0" * 40}


@pytest.fixture(scope="module")
def tools() -> Toolchain:
    return toolchain()


@pytest.fixture
def workspace(tmp_path: Path, tools: Toolchain) -> Workspace:
    return Workspace(tmp_path / "project", "contract", tools)


def render_env(out: Path) -> dict[str, str]:
    return {"GOAPP_RENDER_DIR": str(out), "GOAPP_IMAGE_DIGEST": RENDER_DIGEST}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_render_every_stack_then_no_changes(stack: str) -> None:
    """preview → up (writes YAML) → preview --expect-no-changes, through the Makefile's script."""
    stack_command("render-preview", stack, env=RENDER).check()
    stack_command("render", stack, env=RENDER).check()
    manifests = sorted((REPO_ROOT / "dist" / stack / "1-manifest").glob("*.yaml"))
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in manifests}
    expected = {"Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"}
    assert expected <= kinds, f"{stack} rendered {kinds}"
    if stack in ("staging", "prod"):
        assert {"HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    deployment = next(yaml.safe_load(p.read_text()) for p in manifests if "deployment" in p.name)
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f"@{RENDER_DIGEST}")
    stack_command("render-preview", stack, "--expect-no-changes", env=RENDER).check()


BASE: dict[str, Any] = {
    "goapp:namespace": "contract",
    "goapp:image": {"repository": "registry.example.com/goapp", "tag": "1.0.0"},
}

# Each case breaks several rules at once: the CLI must name every broken key in one run.
CONTRACT_CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "values": (
        {
            "goapp:namespace": "Not_A_Label",
            "goapp:replicas": 0,
            "goapp:port": 70000,
            "goapp:env": {"1BAD": "x", "PORT": "1"},
            "goapp:resources": {"requests": {"cpu": "fast", "memory": "64Mi"}, "limits": {"memory": "32Mi"}},
            "goapp:storage": {"size": "0", "accessMode": "ReadWriteAll"},
            "goapp:autoscaling": {"minReplicas": 3, "maxReplicas": 2, "cpuUtilization": 150},
        },
        [
            "goapp:namespace",
            "goapp:replicas",
            "goapp:port",
            "goapp:env.1BAD",
            "PORT is derived from goapp:port",
            "goapp:resources.requests.cpu",
            "goapp:storage.size",
            "goapp:storage.accessMode",
            "goapp:autoscaling.cpuUtilization",
        ],
    ),
    "image": (
        {
            "goapp:image": {
                "repository": "registry.example.com/goapp:v1",
                "tag": "latest",
                "platform": "x",
                "push": "maybe",
                "baseImages": {"go": "golang@sha256"},
            }
        },
        [
            "goapp:image.repository",
            "goapp:image.tag",
            "goapp:image.platform",
            "goapp:image.push",
            "goapp:image.baseImages.go",
        ],
    ),
    "service-shutdown-url": (
        {
            "goapp:service": {"type": "Ingress", "port": 0},
            "goapp:shutdown": {"preStopSeconds": 500, "drainSeconds": -1, "timeoutSeconds": 0},
            "goapp:url": "goapp.example.com",
        },
        [
            "goapp:service.type",
            "goapp:service.port",
            "goapp:shutdown.preStopSeconds",
            "goapp:shutdown.drainSeconds",
            "goapp:shutdown.timeoutSeconds",
            "goapp:url",
        ],
    ),
    "plaintext-registry-password": (
        {
            "goapp:image": {
                "repository": "registry.example.com/goapp",
                "registry": {"server": "r", "username": "u", "password": "p"},
            }
        },
        ["goapp:image.registry.password: must be a Pulumi secret"],
    ),
    "limits-below-requests": (
        {
            "goapp:resources": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"memory": "128Mi"},
            },
            "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteOnce", "storageClass": ""},
        },
        [
            "goapp:resources.limits.memory: got '128Mi'; must be at least requests.memory '256Mi'",
            "goapp:storage.storageClass",
        ],
    ),
    "cross-key": (
        {
            "goapp:autoscaling": {"minReplicas": 3, "maxReplicas": 2},
            "goapp:resources": {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
        },
        ["goapp:autoscaling.maxReplicas: got 2; must be at least minReplicas (3)", "goapp:resources.limits.cpu: "],
    ),
    "storage-mode": (
        {"goapp:replicas": 2, "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteOncePod"}},
        ["goapp:storage.accessMode: ReadWriteOncePod allows a single pod"],
    ),
    "signed-quantities": (
        {
            "goapp:resources": {"requests": {"cpu": "-100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "goapp:storage": {"size": "-1Gi"},
        },
        ["goapp:resources.requests.cpu: got '-100m'; must be zero or more", "goapp:storage.size: got '-1Gi'"],
    ),
    "unknown-keys": (
        {"goapp:replica": 2, "goapp:storage": {"sise": "1Gi"}},
        ["goapp:replica: unknown key; did you mean goapp:replicas?", "did you mean goapp:storage.size?"],
    ),
    "plaintext-secret": (
        {"goapp:secretEnv": {"API_TOKEN": "plaintext"}},
        ["goapp:secretEnv.API_TOKEN: must be a Pulumi secret", "goapp:rolloutKey: required when goapp:secretEnv"],
    ),
    "missing": ({"goapp:image": None, "goapp:namespace": None}, ["goapp:namespace", "goapp:image"]),
}


@pytest.mark.parametrize("case", sorted(CONTRACT_CASES))
def test_contract_violations_fail_through_the_cli(case: str, workspace: Workspace, tmp_path: Path) -> None:
    overrides, named = CONTRACT_CASES[case]
    config = copy.deepcopy(BASE)
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    workspace.init(config)
    for command in ("preview", "up"):
        result = workspace.run(command, env=render_env(tmp_path / "out"))
        assert result.code != 0, f"{command} accepted a bad config:\n{result.out[-3000:]}"
        for needle in named:
            assert needle in result.out, f"{command} output does not name {needle!r}:\n{result.out[-3000:]}"
        assert "Traceback" not in result.out, "a config error is a message, not a stack trace"
    assert [r["type"] for r in workspace.resources() if r["type"] != "pulumi:pulumi:Stack"] == []
    assert not (tmp_path / "out").exists(), "nothing may be rendered from an invalid config"


def test_secret_env_never_reaches_the_state_in_plaintext(workspace: Workspace, tmp_path: Path) -> None:
    secret = "s3cr3t-value-for-state-test-7f3a"
    key = "rollout-key-for-the-state-test-0123456789"
    workspace.init(copy.deepcopy(BASE))
    workspace.set_secret("goapp:secretEnv.API_TOKEN", secret)
    workspace.set_secret("goapp:rolloutKey", key)
    assert secret not in workspace.config_file.read_text(), "the stack file must hold ciphertext only"
    workspace.run("up", env=render_env(tmp_path / "out")).check()
    types = {r["type"] for r in workspace.resources()}
    assert "kubernetes:core/v1:Secret" in types
    for value in (secret, key):
        assert value not in workspace.state_file_text()
        assert value not in workspace.state().__repr__()
    # Render mode writes Secrets as plain YAML (documented): the value is there, base64 or not.
    rendered = "\n".join(p.read_text() for p in (tmp_path / "out").rglob("*.yaml"))
    assert "API_TOKEN" in rendered


def test_a_plain_value_beside_a_secret_one_is_refused_by_name(workspace: Workspace, tmp_path: Path) -> None:
    """The engine marks all of goapp:secretEnv secret once one value is; the program reads the stack file."""
    workspace.init(copy.deepcopy(BASE))
    workspace.set_secret("goapp:secretEnv.API_TOKEN", "a-real-secret-value")
    workspace.set_secret("goapp:rolloutKey", "rollout-key-for-the-mixed-map-test-0123")
    # Typed into the stack file by hand, beside the encrypted value.
    document = yaml.safe_load(workspace.config_file.read_text())
    document["config"]["goapp:secretEnv"]["DB_PASSWORD"] = "typed-in-the-clear"
    workspace.config_file.write_text(yaml.safe_dump(document))
    for command in ("preview", "up"):
        result = workspace.run(command, env=render_env(tmp_path / "out"))
        assert result.code != 0, result.out[-3000:]
        assert "goapp:secretEnv.DB_PASSWORD: must be a Pulumi secret" in result.out, result.out[-3000:]
        assert "goapp:secretEnv.API_TOKEN" not in result.out
        assert "typed-in-the-clear" not in result.out
    assert [r["type"] for r in workspace.resources() if r["type"] != "pulumi:pulumi:Stack"] == []


def test_up_under_the_empty_passphrase_is_refused_outside_throwaway_stacks(workspace: Workspace) -> None:
    workspace.init(copy.deepcopy(BASE))
    # A prebuilt digest: nothing to build, so only the contract stands between the CLI and a cluster.
    digest = {"GOAPP_IMAGE_DIGEST": RENDER_DIGEST, "PULUMI_CONFIG_PASSPHRASE": ""}
    refused = workspace.run("up", env=digest)
    assert refused.code != 0
    assert "PULUMI_CONFIG_PASSPHRASE: stack 'contract' encrypts its secrets with the empty passphrase" in refused.out
    assert "pulumi stack change-secrets-provider" in refused.out
    assert [r["type"] for r in workspace.resources() if r["type"] != "pulumi:pulumi:Stack"] == []
    previewed = workspace.run("preview", env=digest)
    assert "PULUMI_CONFIG_PASSPHRASE:" not in previewed.out, "preview stores nothing and stays allowed"
