"""The components on their own, as a platform team imports them: narrow args, wired by outputs, no collisions."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest

import harness
from infra import program
from infra.components import (
    AUTOSCALED,
    AppConfig,
    AppConfigArgs,
    AppIdentity,
    Autoscaler,
    AutoscalerArgs,
    DataVolume,
    DataVolumeArgs,
    ReplicaRule,
    WebDeployment,
    WebDeploymentArgs,
    fixed_replicas,
)
from infra.components.web_deployment import gomemlimit
from infra.settings import Autoscaling, ResourceLimits, Resources, Storage

README = Path(__file__).resolve().parent.parent / "README.md"
LOCAL = harness.stack_file_config("local")


def readme_example() -> str:
    """The Python block of the README's section on composing your own program."""
    section = README.read_text().split("## Use the components in your own program", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return str(block)


def run_beside_goapp(monkeypatch: pytest.MonkeyPatch, extra: Any) -> harness.Run:
    """A whole goapp stack and `extra()` registered in one program."""
    mocks = harness.RecordingMocks(preview=False)
    original = program.deploy

    def deploy_both(settings: Any) -> dict[str, pulumi.Input[str]]:
        outputs = original(settings)
        extra()
        return outputs

    monkeypatch.setattr(program, "deploy", deploy_both)
    return harness.run(LOCAL, stack="local", monkeypatch=monkeypatch, mocks=mocks)


def kubernetes_objects(result: harness.Run) -> list[harness.Registered]:
    return [r for r in result.mocks.resources if r.typ.startswith("kubernetes:") and "providers" not in r.typ]


def test_the_readme_example_composes_a_second_service_beside_goapp(monkeypatch: pytest.MonkeyPatch) -> None:
    code = compile(readme_example(), str(README), "exec")
    result = run_beside_goapp(monkeypatch, lambda: exec(code, {"__name__": "readme_example"}))

    objects = kubernetes_objects(result)
    names = Counter((r.typ, r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"]) for r in objects)
    assert [key for key, count in names.items() if count > 1] == [], "two objects with one Kubernetes name"
    urns = Counter((r.typ, r.name, result.parent_type_of(r.name)) for r in objects)
    assert [key for key, count in urns.items() if count > 1] == [], "two resources with one URN"

    billing = {r.typ: r.inputs for r in objects if r.name.startswith("billing-")}
    assert billing["kubernetes:core/v1:Namespace"]["metadata"]["name"] == "billing"
    deployment = billing["kubernetes:apps/v1:Deployment"]
    assert deployment["metadata"] == {
        "name": "billing",
        "namespace": "billing",
        "labels": AppIdentity(name="billing", instance="billing-prod", version="2.3.1").labels,
    }
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "billing-data"
    assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": "billing-env"}}]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert billing["kubernetes:core/v1:Service"]["spec"]["selector"] == selector
    assert billing["kubernetes:policy/v1:PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    goapp = next(r for r in objects if r.typ == "kubernetes:apps/v1:Deployment" and r.name.startswith("goapp-"))
    assert goapp.inputs["spec"]["selector"]["matchLabels"] != selector
    assert result.outputs["dnsName"] == "goapp.goapp.svc.cluster.local", "goapp's own stack is untouched"


def small_service(
    name: str, namespace: str, replicas: ReplicaRule, storage: Storage | None = None, instance: str = "t"
) -> WebDeployment:
    """A WebDeployment with its own configuration and volume, as the least a second service needs."""
    identity = AppIdentity(name=name, instance=instance)
    config = AppConfig(name, AppConfigArgs(namespace=namespace, identity=identity, env={"A": "1"}))
    data = DataVolume(name, DataVolumeArgs(namespace=namespace, identity=identity, storage=storage or Storage()))
    args = WebDeploymentArgs(
        namespace=namespace,
        identity=identity,
        image=f"127.0.0.1:5000/{name}@{harness.FAKE_DIGEST}",
        config=config,
        data=data,
        replicas=replicas,
    )
    return WebDeployment(name, args)


def test_two_services_in_one_namespace_keep_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    def second() -> None:
        small_service("worker", "goapp", fixed_replicas(1), instance="goapp-local")

    objects = kubernetes_objects(run_beside_goapp(monkeypatch, second))
    in_goapp = [r for r in objects if r.inputs["metadata"].get("namespace") == "goapp"]
    names = [(r.typ, r.inputs["metadata"]["name"]) for r in in_goapp]
    assert len(names) == len(set(names)), names
    assert ("kubernetes:core/v1:ConfigMap", "worker-env") in names
    assert ("kubernetes:core/v1:PersistentVolumeClaim", "worker-data") in names
    selectors = [r.inputs["spec"]["selector"]["matchLabels"] for r in in_goapp if r.typ.endswith("Deployment")]
    assert len(selectors) == 2
    assert selectors[0] != selectors[1], "each deployment selects only its own pods"


def test_an_autoscaler_refuses_a_deployment_with_a_fixed_count(monkeypatch: pytest.MonkeyPatch) -> None:
    caught: list[Exception] = []

    def fixed_then_scaled() -> None:
        web = small_service("api", "ns", fixed_replicas(3))
        try:
            Autoscaler("api", AutoscalerArgs(target=web, autoscaling=Autoscaling(min_replicas=2, max_replicas=4)))
        except ValueError as error:
            caught.append(error)

    result = run_beside_goapp(monkeypatch, fixed_then_scaled)
    (error,) = caught
    assert "declare the WebDeployment with replicas=AUTOSCALED" in str(error)
    assert not [r for r in result.mocks.resources if r.name == "api-autoscaler"], "nothing half-registered"


def test_a_single_pod_volume_refuses_several_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    caught: list[Exception] = []

    def too_many() -> None:
        try:
            small_service("api", "ns", fixed_replicas(2), Storage(access_mode="ReadWriteOncePod"))
        except ValueError as error:
            caught.append(error)

    run_beside_goapp(monkeypatch, too_many)
    (error,) = caught
    assert "admits one pod" in str(error)


def test_secret_settings_need_a_rollout_key(monkeypatch: pytest.MonkeyPatch) -> None:
    caught: list[Exception] = []

    def keyless() -> None:
        try:
            AppConfig("api", AppConfigArgs(namespace="ns", identity=AppIdentity("api", "t"), secret_env={"T": "x"}))
        except ValueError as error:
            caught.append(error)

    run_beside_goapp(monkeypatch, keyless)
    (error,) = caught
    assert "secret_env needs a rollout_key" in str(error)


def test_replica_rules() -> None:
    assert fixed_replicas(3).count == 3
    assert not fixed_replicas(3).ignore_changes
    assert AUTOSCALED.count is None
    assert AUTOSCALED.ignore_changes == ("spec.replicas",)
    with pytest.raises(ValueError, match="at least 1"):
        fixed_replicas(0)


@pytest.mark.parametrize(("limit", "expected"), [("128Mi", 120795955), ("1Gi", 966367641), ("500M", 450000000)])
def test_gomemlimit_is_ninety_percent_of_the_memory_limit(limit: str, expected: int) -> None:
    assert gomemlimit(Resources(limits=ResourceLimits(memory=limit))) == str(expected)
