"""Every stack file composes, and each keeps the differences it exists for."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import harness
from harness import STACKS, STACKS_DIR, Run


def run_stack(stack: str, monkeypatch: pytest.MonkeyPatch, preview: bool = False) -> Run:
    return harness.run(harness.stack_file_config(stack), stack=stack, preview=preview, monkeypatch=monkeypatch)


def deployment(result: Run) -> dict[str, Any]:
    return result.mocks.one("kubernetes:apps/v1:Deployment").inputs


def test_the_four_example_stacks_exist_in_order() -> None:
    assert STACKS == ("local", "dev", "staging", "prod")
    assert all((STACKS_DIR / f"Pulumi.{stack}.yaml").is_file() for stack in STACKS)


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_composes(stack: str, preview: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_stack(stack, monkeypatch, preview)
    assert result.outputs["namespace"] == harness.stack_file_config(stack)["goapp:namespace"]
    if preview:
        assert "imageRef" not in result.outputs, "the digest is unknown until the image is pushed"
    else:
        assert "@sha256:" in result.outputs["imageRef"]
    assert result.outputs["dnsName"] == f"goapp.{result.outputs['namespace']}.svc.cluster.local"
    assert result.mocks.one("kubernetes:core/v1:Namespace")
    assert result.warnings == [], f"{stack} should be a clean example: {result.warnings}"


def test_namespaces_differ_per_stack() -> None:
    namespaces = [harness.stack_file_config(s)["goapp:namespace"] for s in STACKS]
    assert len(set(namespaces)) == len(namespaces)


def test_local_pushes_to_the_loopback_registry_and_exposes_a_loopback_url(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_stack("local", monkeypatch)
    image = result.mocks.one(harness.DOCKER_IMAGE).inputs
    assert image["imageName"].startswith("127.0.0.1:5000/goapp:")
    assert image["skipPush"] is False
    assert image["build"]["args"]["GO_IMAGE"].startswith("goapp-local/")
    assert image["build"]["args"]["RUNTIME_IMAGE"].startswith("goapp-local/")
    service = result.mocks.one("kubernetes:core/v1:Service").inputs["spec"]
    assert service["type"] == "NodePort", "the NodePort stays available beside the way in"
    assert int(service["ports"][0]["nodePort"]) == 30080
    assert result.outputs["url"] == "http://127.0.0.1:8000", "the ingress controller's loopback entry point"
    route = result.mocks.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").inputs["spec"]
    assert route["parentRefs"][0]["name"] == "local"
    assert route["parentRefs"][0]["namespace"] == "traefik"
    assert "hostnames" not in route
    assert result.outputs["imageRef"].startswith("127.0.0.1:5000/goapp@sha256:")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_real_environments_have_their_own_cluster_registry_and_storage(stack: str) -> None:
    config = harness.stack_file_config(stack)
    assert config["goapp:kubernetes"]["context"] == stack
    assert "127.0.0.1" not in config["goapp:image"]["repository"]
    assert config["goapp:storage"]["storageClass"]
    others = [harness.stack_file_config(s) for s in ("dev", "staging", "prod") if s != stack]
    assert all(o["goapp:image"]["repository"] != config["goapp:image"]["repository"] for o in others)


def test_prod_has_three_replicas_through_the_hpa_and_a_pdb(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_stack("prod", monkeypatch)
    hpa = result.mocks.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
    assert hpa["minReplicas"] >= 3
    assert result.mocks.one("kubernetes:policy/v1:PodDisruptionBudget")
    assert "replicas" not in deployment(result)["spec"]


def test_prod_is_larger_than_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.quantity import parse_quantity

    def limits(stack: str) -> dict[str, str]:
        container = deployment(run_stack(stack, monkeypatch))["spec"]["template"]["spec"]["containers"][0]
        return dict(container["resources"]["limits"])

    prod, dev = limits("prod"), limits("dev")
    assert parse_quantity(prod["memory"]) > parse_quantity(dev["memory"])
    assert parse_quantity(prod["cpu"]) > parse_quantity(dev["cpu"])


def test_prod_registry_credentials_are_secrets() -> None:
    image = harness.stack_file_config("prod")["goapp:image"]
    assert image["registry"]["password"].keys() == {"secure"}


@pytest.mark.parametrize("stack", STACKS)
def test_secret_env_values_are_encrypted_in_stack_files(stack: str) -> None:
    for value in harness.stack_file_config(stack).get("goapp:secretEnv", {}).values():
        assert isinstance(value, dict), f"{stack}: plaintext secretEnv value"
        assert value.keys() == {"secure"}, f"{stack}: plaintext secretEnv value"


def test_dev_stack_renders_with_a_prebuilt_digest(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    environ = {"GOAPP_RENDER_DIR": str(tmp_path), "GOAPP_IMAGE_DIGEST": harness.FAKE_DIGEST}
    result = harness.run(harness.stack_file_config("dev"), stack="dev", environ=environ, monkeypatch=monkeypatch)
    assert result.mocks.of_type(harness.DOCKER_IMAGE) == [], "render mode builds nothing"
    provider = result.mocks.one("pulumi:providers:kubernetes").inputs
    assert provider["renderYamlToDirectory"] == str(tmp_path)
    image = deployment(result)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.dev.example.com/platform/goapp@{harness.FAKE_DIGEST}"


def test_a_prebuilt_digest_never_loads_the_image_builder() -> None:
    """Render-mode and promotion previews skip pulumi_docker's import (a third of a second of every preview);
    a fresh interpreter shows whether importing the program pulled it in."""
    probe = (
        "import sys; import infra.program; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi_docker', 'pkg_resources')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=harness.REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", f"importing infra.program loaded {done.stdout.strip()}"
