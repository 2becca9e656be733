"""The Workload component under Pulumi mocks: every object, with its production defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import harness
from harness import FAKE_DIGEST, Run
from infra import objects

BASE: dict[str, Any] = {
    "goapp:namespace": "goapp-test",
    "goapp:image": {"repository": "registry.example.com/goapp", "tag": "1.0.0"},
    "goapp:env": {"APP_MESSAGE": "hello"},
    "goapp:resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
    "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteMany"},
}
SCALED = {**BASE, "goapp:autoscaling": {"minReplicas": 2, "maxReplicas": 6, "cpuUtilization": 75}}

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NAMESPACE = "kubernetes:core/v1:Namespace"
ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.fixture(params=[False, True], ids=["update", "preview"])
def preview(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def run(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, preview: bool = False) -> Run:
    return harness.run(config, preview=preview, monkeypatch=monkeypatch)


def pod_spec(result: Run) -> dict[str, Any]:
    spec: dict[str, Any] = result.mocks.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    return spec


def app_container(result: Run) -> dict[str, Any]:
    (container,) = pod_spec(result)["containers"]
    return dict(container)


def test_creates_every_object_of_the_workload(monkeypatch: pytest.MonkeyPatch, preview: bool) -> None:
    result = run(SCALED, monkeypatch, preview)
    for typ in (NAMESPACE, ACCOUNT, CONFIG_MAP, PVC, DEPLOYMENT, SERVICE, NETPOL, HPA, PDB):
        result.mocks.one(typ)
    assert result.mocks.of_type(SECRET) == [], "no Secret without goapp:secretEnv"


def test_children_are_parented_and_named_under_the_component(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(SCALED, monkeypatch)
    kubernetes = [r for r in result.mocks.resources if r.typ.startswith("kubernetes:") and "providers" not in r.typ]
    assert kubernetes
    for resource in kubernetes:
        assert result.parent_of(resource.name) == "goapp", resource.name
        assert resource.name.startswith("goapp-"), resource.name
    assert result.parent_of("goapp-image") == "goapp"


def test_namespace_enforces_the_restricted_pod_security_standard(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = run(BASE, monkeypatch).mocks.one(NAMESPACE).inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_pod_meets_the_restricted_standard(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch)
    pod = pod_spec(result)
    container = app_container(result)
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["fsGroup"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not any(key in pod for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("hostPath" not in volume for volume in pod["volumes"])


def test_only_data_and_tmp_are_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch)
    mounts = {m["mountPath"]: m["name"] for m in app_container(result)["volumeMounts"]}
    assert mounts == {"/data": "data", "/tmp": "tmp"}
    volumes = {v["name"]: v for v in pod_spec(result)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == result.mocks.one(PVC).inputs["metadata"]["name"]
    assert "emptyDir" in volumes["tmp"]


def test_service_account_is_dedicated_and_mounts_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch)
    account = result.mocks.one(ACCOUNT).inputs
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(result)["serviceAccountName"] == account["metadata"]["name"]


def test_probes_are_on_distinct_paths_of_the_named_port(monkeypatch: pytest.MonkeyPatch) -> None:
    container = app_container(run(BASE, monkeypatch))
    paths = {kind: container[kind]["httpGet"]["path"] for kind in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert paths == {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/startupz"}
    assert len(set(paths.values())) == 3
    assert {container[k]["httpGet"]["port"] for k in paths} == {"http"}


def test_requests_limits_and_gomemlimit(monkeypatch: pytest.MonkeyPatch) -> None:
    container = app_container(run(BASE, monkeypatch))
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "32Mi"},
        "limits": {"cpu": "1", "memory": "128Mi", "ephemeral-storage": "256Mi"},
    }
    (gomemlimit,) = [e for e in container["env"] if e["name"] == "GOMEMLIMIT"]
    field = gomemlimit["valueFrom"]["resourceFieldRef"]
    assert field["resource"] == "limits.memory"
    assert field["containerName"] == container["name"]


def test_env_is_injected_from_config_map_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**BASE, "goapp:secretEnv": {"API_TOKEN": {"secure": "v1:x"}}}
    result = run(config, monkeypatch)
    config_map = result.mocks.one(CONFIG_MAP).inputs
    secret = result.mocks.one(SECRET).inputs
    assert config_map["data"]["APP_MESSAGE"] == "hello"
    assert config_map["data"]["PORT"] == "8080"
    assert config_map["data"]["DATA_DIR"] == "/data"
    assert "API_TOKEN" not in config_map["data"], "secret env must never land in a ConfigMap"
    assert secret["stringData"] == {"API_TOKEN": harness.MOCK_SECRET}
    assert harness.is_secret(result.mocks.one(SECRET).raw_inputs["stringData"]), "secret env must stay a Pulumi secret"
    refs = app_container(result)["envFrom"]
    assert refs == [
        {"configMapRef": {"name": config_map["metadata"]["name"]}},
        {"secretRef": {"name": secret["metadata"]["name"]}},
    ]


def test_shutdown_timing_is_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**BASE, "goapp:shutdown": {"preStopSeconds": 4, "drainSeconds": 6, "timeoutSeconds": 20}}
    result = run(config, monkeypatch)
    container = app_container(result)
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 4}}
    assert result.mocks.one(CONFIG_MAP).inputs["data"]["SHUTDOWN_DRAIN"] == "6s"
    assert result.mocks.one(CONFIG_MAP).inputs["data"]["SHUTDOWN_TIMEOUT"] == "20s"
    assert pod_spec(result)["terminationGracePeriodSeconds"] > 4 + 6 + 20


def test_selector_is_the_stable_subset_of_the_pod_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch, preview=False)
    spec = result.mocks.one(DEPLOYMENT).inputs["spec"]
    selector = spec["selector"]["matchLabels"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert selector == {"app.kubernetes.io/name": "goapp", "app.kubernetes.io/instance": "goapp-test"}
    assert selector.items() <= pod_labels.items()
    assert pod_labels["app.kubernetes.io/managed-by"] == "pulumi"
    versioned = harness.run(BASE, monkeypatch=monkeypatch, environ={"GOAPP_VERSION": "9.9.9"})
    assert versioned.mocks.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"] == selector, (
        "a new version must not change the selector"
    )


def test_service_selects_the_pods_and_targets_the_container_port(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run({**BASE, "goapp:port": 9000}, monkeypatch)
    service = result.mocks.one(SERVICE).inputs["spec"]
    pod_labels = result.mocks.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["labels"]
    (port,) = service["ports"]
    (container_port,) = app_container(result)["ports"]
    assert service["selector"].items() <= pod_labels.items()
    assert port["targetPort"] == container_port["name"]
    assert container_port["containerPort"] == 9000


def test_hpa_targets_the_deployment_and_owns_replicas(monkeypatch: pytest.MonkeyPatch, preview: bool) -> None:
    result = run(SCALED, monkeypatch, preview)
    deployment = result.mocks.one(DEPLOYMENT)
    hpa = result.mocks.one(HPA).inputs["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment.inputs["metadata"]["name"],
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 75}
    assert "replicas" not in deployment.inputs["spec"]
    assert result.options[deployment.name].ignore_changes == ["spec.replicas"]


def test_without_autoscaling_the_deployment_sets_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run({**BASE, "goapp:replicas": 3}, monkeypatch)
    deployment = result.mocks.one(DEPLOYMENT)
    assert deployment.inputs["spec"]["replicas"] == 3
    assert result.mocks.of_type(HPA) == []
    assert not result.options[deployment.name].ignore_changes


@pytest.mark.parametrize(
    ("extra", "has_budget"),
    [
        ({"goapp:replicas": 1}, False),
        ({"goapp:replicas": 2}, True),
        ({"goapp:autoscaling": {"minReplicas": 1, "maxReplicas": 3}}, True),
        ({"goapp:autoscaling": {"minReplicas": 1, "maxReplicas": 1}}, False),
    ],
)
def test_disruption_budget_when_more_than_one_replica_can_run(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], has_budget: bool
) -> None:
    result = run({**BASE, **extra}, monkeypatch)
    budgets = result.mocks.of_type(PDB)
    assert bool(budgets) is has_budget
    if budgets:
        spec = budgets[0].inputs["spec"]
        assert spec["maxUnavailable"] == 1
        assert spec["selector"]["matchLabels"] == result.mocks.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]


def test_rolling_update_never_drops_below_the_replica_count(monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = run(BASE, monkeypatch).mocks.one(DEPLOYMENT).inputs["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def test_read_write_once_pod_forces_recreate(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**BASE, "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteOncePod"}}
    result = run(config, monkeypatch)
    assert result.mocks.one(DEPLOYMENT).inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert result.mocks.one(PVC).inputs["spec"]["accessModes"] == ["ReadWriteOncePod"]


def test_read_write_once_with_replicas_warns_through_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**SCALED, "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteOnce"}}
    result = run(config, monkeypatch)
    assert any("ReadWriteOnce with up to 6 replicas" in w for w in result.warnings)


def test_claim_has_size_class_and_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**BASE, "goapp:storage": {"size": "3Gi", "accessMode": "ReadWriteMany", "storageClass": "nfs"}}
    spec = run(config, monkeypatch).mocks.one(PVC).inputs["spec"]
    assert spec == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "nfs",
        "resources": {"requests": {"storage": "3Gi"}},
    }


def test_pods_carry_scrape_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    annotations = run(BASE, monkeypatch).mocks.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"


def checksum(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    deployment = harness.run(config, monkeypatch=monkeypatch).mocks.one(DEPLOYMENT)
    value: str = deployment.inputs["spec"]["template"]["metadata"]["annotations"][objects.CHECKSUM_ANNOTATION]
    return value


def test_checksum_changes_exactly_when_injected_env_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    with_secret = {**BASE, "goapp:secretEnv": {"TOKEN": {"secure": "v1:x"}}}
    baseline = checksum(with_secret, monkeypatch)
    assert checksum(copy.deepcopy(with_secret), monkeypatch) == baseline, "same config, same checksum"
    assert checksum({**with_secret, "goapp:replicas": 2}, monkeypatch) == baseline, "replicas are not env"
    assert checksum({**with_secret, "goapp:resources": SCALED["goapp:resources"]}, monkeypatch) == baseline
    changed_env = {**with_secret, "goapp:env": {"APP_MESSAGE": "changed"}}
    assert checksum(changed_env, monkeypatch) != baseline
    renamed_secret = {**BASE, "goapp:secretEnv": {"OTHER": {"secure": "v1:x"}}}
    assert checksum(renamed_secret, monkeypatch) != baseline
    assert checksum({**with_secret, "goapp:port": 9090}, monkeypatch) != baseline, "PORT is injected env"


def test_checksum_of_secret_env_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with_secret = {**BASE, "goapp:secretEnv": {"TOKEN": {"secure": "v1:x"}}}
    raw = harness.run(with_secret, monkeypatch=monkeypatch).mocks.one(DEPLOYMENT).raw_inputs
    assert harness.MOCK_SECRET not in str(harness.reveal(raw)), "the secret value itself never reaches the Deployment"
    assert "1b47061264138c4ac30d75fd1eb44270" in str(raw), "the checksum derived from a secret is itself a secret"
    plain = harness.run(BASE, monkeypatch=monkeypatch).mocks.one(DEPLOYMENT).raw_inputs
    assert not harness.is_secret(plain["spec"])
    assert "1b47061264138c4ac30d75fd1eb44270" not in str(plain)


def test_checksum_depends_on_secret_values() -> None:
    env = {"A": "1"}
    assert objects.config_checksum(env, {"T": "x"}) != objects.config_checksum(env, {"T": "y"})
    assert objects.config_checksum(env, {"T": "x"}) == objects.config_checksum(dict(env), {"T": "x"})


def test_deployment_runs_the_pushed_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch)
    image = app_container(result)["image"]
    assert image == f"registry.example.com/goapp@{FAKE_DIGEST}"
    assert result.outputs["imageRef"] == image


def test_image_is_unknown_until_pushed_in_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch, preview=True)
    image = app_container(result)["image"]
    assert "@sha256:" not in str(image), "preview cannot know the digest and must not invent one"
    assert ":1.0.0" not in str(image), "the Deployment must never fall back to the tag"


def test_network_policy_admits_only_the_app_port(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch)
    spec = result.mocks.one(NETPOL).inputs["spec"]
    assert spec["podSelector"]["matchLabels"] == result.mocks.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]
    assert spec["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert {p["port"] for rule in spec["egress"] for p in rule["ports"]} == {53}


def test_invalid_config_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    bad = {**BASE, "goapp:replicas": 0, "goapp:namespace": "Bad"}
    mocks = harness.RecordingMocks(preview=False)
    with pytest.raises(pulumi.RunError) as caught:
        harness.run(bad, monkeypatch=monkeypatch, mocks=mocks)
    assert "goapp:replicas" in str(caught.value)
    assert "goapp:namespace" in str(caught.value)
    assert mocks.resources == [], "not even a provider may be registered for an invalid stack"


def test_stack_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run({**BASE, "goapp:url": "https://goapp.example.com"}, monkeypatch)
    assert result.outputs["namespace"] == "goapp-test"
    assert result.outputs["serviceName"] == "goapp"
    assert result.outputs["dnsName"] == "goapp.goapp-test.svc.cluster.local"
    assert result.outputs["url"] == "https://goapp.example.com"
    assert "url" not in run(BASE, monkeypatch).outputs
