"""The whole program under Pulumi mocks: every object one stack gets, with its production defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import harness
from harness import FAKE_DIGEST, Run
from infra.components.app_config import rollout_revision
from infra.components.web_deployment import REVISION_ANNOTATION

BASE: dict[str, Any] = {
    "goapp:namespace": "goapp-test",
    "goapp:image": {"repository": "registry.example.com/goapp", "tag": "1.0.0"},
    "goapp:env": {"APP_MESSAGE": "hello"},
    "goapp:resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
    "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteMany"},
}
SCALED = {**BASE, "goapp:autoscaling": {"minReplicas": 2, "maxReplicas": 6, "cpuUtilization": 75}}
WITH_SECRET = {
    **BASE,
    "goapp:secretEnv": {"API_TOKEN": {"secure": "v1:token"}},
    "goapp:rolloutKey": {"secure": "v1:key"},
}

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


def container_env(result: Run) -> dict[str, str]:
    return {e["name"]: e["value"] for e in app_container(result)["env"]}


def test_creates_every_object_of_the_stack(monkeypatch: pytest.MonkeyPatch, preview: bool) -> None:
    result = run(SCALED, monkeypatch, preview)
    for typ in (NAMESPACE, ACCOUNT, CONFIG_MAP, PVC, DEPLOYMENT, SERVICE, NETPOL, HPA, PDB):
        result.mocks.one(typ)
    assert result.mocks.of_type(SECRET) == [], "no Secret without goapp:secretEnv"


COMPONENT_OF = {
    NAMESPACE: "goapp:namespace:RestrictedNamespace",
    CONFIG_MAP: "goapp:config:AppConfig",
    SECRET: "goapp:config:AppConfig",
    PVC: "goapp:storage:DataVolume",
    ACCOUNT: "goapp:workload:WebDeployment",
    DEPLOYMENT: "goapp:workload:WebDeployment",
    SERVICE: "goapp:network:AppService",
    NETPOL: "goapp:network:AppNetworkPolicy",
    HPA: "goapp:scaling:Autoscaler",
    PDB: "goapp:availability:DisruptionBudget",
}


def test_each_object_belongs_to_the_component_of_its_concept(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run({**SCALED, **{k: v for k, v in WITH_SECRET.items() if k not in SCALED}}, monkeypatch)
    kubernetes = [r for r in result.mocks.resources if r.typ.startswith("kubernetes:") and "providers" not in r.typ]
    assert {r.typ for r in kubernetes} == set(COMPONENT_OF)
    for resource in kubernetes:
        assert result.parent_type_of(resource.name) == COMPONENT_OF[resource.typ], resource.name
        assert result.parent_of(resource.name) == "goapp", resource.name
        assert resource.name.startswith("goapp-"), resource.name
        assert not result.options[resource.name].depends_on, f"{resource.name}: wired by outputs, not depends_on"
    assert result.parent_of("goapp-image") == "goapp"


def test_namespace_enforces_the_restricted_pod_security_standard(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = run(BASE, monkeypatch).mocks.one(NAMESPACE).inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_every_namespaced_object_lives_in_the_stacks_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run({**SCALED, **{k: v for k, v in WITH_SECRET.items() if k not in SCALED}}, monkeypatch)
    for resource in result.mocks.resources:
        if resource.typ.startswith("kubernetes:") and resource.typ not in (NAMESPACE, "pulumi:providers:kubernetes"):
            assert resource.inputs["metadata"]["namespace"] == "goapp-test", resource.name


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
    assert {container[k]["httpGet"]["port"] for k in paths} == {"http"}


def test_requests_limits_and_gomemlimit_below_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(BASE, monkeypatch)
    assert app_container(result)["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "32Mi"},
        "limits": {"cpu": "1", "memory": "128Mi", "ephemeral-storage": "256Mi"},
    }
    # 90 % of 128 MiB: the rest is headroom for memory the Go runtime does not manage.
    assert container_env(result)["GOMEMLIMIT"] == str(int(128 * 2**20 * 0.9))


def test_env_is_injected_from_config_map_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(WITH_SECRET, monkeypatch)
    config_map = result.mocks.one(CONFIG_MAP).inputs
    secret = result.mocks.one(SECRET).inputs
    assert config_map["data"] == {"APP_MESSAGE": "hello"}
    assert secret["stringData"] == {"API_TOKEN": harness.plaintext("v1:token")}
    assert harness.is_secret(result.mocks.one(SECRET).raw_inputs["stringData"]), "secret env must stay a Pulumi secret"
    assert app_container(result)["envFrom"] == [
        {"configMapRef": {"name": config_map["metadata"]["name"]}},
        {"secretRef": {"name": secret["metadata"]["name"]}},
    ]


def test_derived_variables_come_from_their_own_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        **BASE,
        "goapp:port": 9000,
        "goapp:shutdown": {"preStopSeconds": 4, "drainSeconds": 6, "timeoutSeconds": 20},
    }
    result = run(config, monkeypatch)
    env = container_env(result)
    assert {k: env[k] for k in ("PORT", "DATA_DIR", "SHUTDOWN_DRAIN", "SHUTDOWN_TIMEOUT")} == {
        "PORT": "9000",
        "DATA_DIR": "/data",
        "SHUTDOWN_DRAIN": "6s",
        "SHUTDOWN_TIMEOUT": "20s",
    }
    container = app_container(result)
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 4}}
    assert pod_spec(result)["terminationGracePeriodSeconds"] > 4 + 6 + 20


def test_selector_is_the_stable_subset_of_the_pod_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = run(BASE, monkeypatch).mocks.one(DEPLOYMENT).inputs["spec"]
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
    (port,) = service["ports"]
    (container_port,) = app_container(result)["ports"]
    assert service["selector"] == result.mocks.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]
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


@pytest.mark.parametrize("protect", [True, False])
def test_a_protected_volume_protects_its_claim_and_namespace(monkeypatch: pytest.MonkeyPatch, protect: bool) -> None:
    config = {**BASE, "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteMany", "protect": protect}}
    result = run(config, monkeypatch)
    assert bool(result.options[result.mocks.one(PVC).name].protect) is protect
    assert bool(result.options[result.mocks.one(NAMESPACE).name].protect) is protect
    assert not result.options[result.mocks.one(DEPLOYMENT).name].protect, "only what holds data is protected"


def test_pods_carry_scrape_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    annotations = run(BASE, monkeypatch).mocks.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"


def revision(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    deployment = harness.run(config, monkeypatch=monkeypatch).mocks.one(DEPLOYMENT)
    value: str = deployment.inputs["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]
    return value


def test_revision_changes_exactly_when_injected_config_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = revision(WITH_SECRET, monkeypatch)
    assert revision(copy.deepcopy(WITH_SECRET), monkeypatch) == baseline, "same config, same revision"
    assert revision({**WITH_SECRET, "goapp:replicas": 2}, monkeypatch) == baseline, "replicas are not config"
    assert revision({**WITH_SECRET, "goapp:resources": SCALED["goapp:resources"]}, monkeypatch) == baseline
    assert revision({**WITH_SECRET, "goapp:env": {"APP_MESSAGE": "changed"}}, monkeypatch) != baseline
    renamed = {**WITH_SECRET, "goapp:secretEnv": {"OTHER": {"secure": "v1:token"}}}
    assert revision(renamed, monkeypatch) != baseline
    rotated = {**WITH_SECRET, "goapp:secretEnv": {"API_TOKEN": {"secure": "v1:rotated"}}}
    assert revision(rotated, monkeypatch) != baseline, "a new secret value must roll the pods"


def test_revision_reveals_nothing_to_test_a_secret_against(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone who may read pods sees the annotation: with secrets it is an HMAC under the rollout key, so
    guessing a secret needs the key too; and the value itself never reaches the Deployment."""
    value = revision(WITH_SECRET, monkeypatch)
    token, key = harness.plaintext("v1:token"), harness.plaintext("v1:key")
    assert value.startswith("hmac-sha256:")
    assert value == rollout_revision({"APP_MESSAGE": "hello"}, {"API_TOKEN": token}, key)
    assert value != rollout_revision({"APP_MESSAGE": "hello"}, {"API_TOKEN": token}, "a guessed key" * 3)
    other_key = {**WITH_SECRET, "goapp:rolloutKey": {"secure": "v1:other-key"}}
    assert revision(other_key, monkeypatch) != value, "the same secret under another key looks unrelated"
    raw = harness.run(WITH_SECRET, monkeypatch=monkeypatch).mocks.one(DEPLOYMENT).raw_inputs
    assert token not in str(harness.reveal(raw)), "the secret value itself never reaches the Deployment"
    assert key not in str(harness.reveal(raw)), "nor the key"


def test_revision_without_secrets_is_a_plain_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    assert revision(BASE, monkeypatch) == rollout_revision({"APP_MESSAGE": "hello"}, {}, None)
    assert revision(BASE, monkeypatch).startswith("sha256:")


def test_rollout_revision_needs_a_key_for_secrets() -> None:
    with pytest.raises(ValueError, match="rollout key"):
        rollout_revision({}, {"T": "x"}, None)
    assert rollout_revision({"A": "1"}, {"T": "x"}, "k" * 32) != rollout_revision({"A": "1"}, {"T": "y"}, "k" * 32)


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


def test_network_policy_admits_the_app_port_from_the_listed_sources_only(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = {"allowFrom": {"namespaces": ["traefik", "monitoring"], "cidrs": ["10.244.0.1/32"]}}
    result = run({**BASE, "goapp:networkPolicy": policy}, monkeypatch)
    spec = result.mocks.one(NETPOL).inputs["spec"]
    assert spec["podSelector"]["matchLabels"] == result.mocks.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"ipBlock": {"cidr": "10.244.0.1/32"}},
    ]


def test_network_policy_without_sources_admits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = run(BASE, monkeypatch).mocks.one(NETPOL).inputs["spec"]
    assert spec.get("ingress", []) == []
    assert "Ingress" in spec["policyTypes"], "an empty rule list only denies when the type is listed"


def test_dns_egress_goes_to_the_cluster_dns_only(monkeypatch: pytest.MonkeyPatch) -> None:
    (rule,) = run(BASE, monkeypatch).mocks.one(NETPOL).inputs["spec"]["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    by_address = {**BASE, "goapp:networkPolicy": {"dns": {"cidrs": ["10.244.0.1/32"]}}}
    (rule,) = run(by_address, monkeypatch).mocks.one(NETPOL).inputs["spec"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "10.244.0.1/32"}}]


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
    exposure = {"kind": "httpRoute", "gateway": {"name": "public", "listener": "https"}}
    result = run({**BASE, "goapp:url": "https://goapp.example.com", "goapp:exposure": exposure}, monkeypatch)
    assert result.outputs["namespace"] == "goapp-test"
    assert result.outputs["serviceName"] == "goapp"
    assert result.outputs["dnsName"] == "goapp.goapp-test.svc.cluster.local"
    assert result.outputs["url"] == "https://goapp.example.com"
    assert "url" not in run(BASE, monkeypatch).outputs


@pytest.mark.parametrize("environ", [{}, {"GOAPP_RENDER_DIR": "/tmp/out", "GOAPP_IMAGE_DIGEST": FAKE_DIGEST}])
def test_config_maps_and_secrets_are_updated_in_place(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    """A replaced object with a fixed name is deleted before it is created again; a pod starting then fails."""
    result = harness.run(BASE, monkeypatch=monkeypatch, environ=environ)
    provider = result.mocks.one("pulumi:providers:kubernetes").inputs
    assert provider["enableConfigMapMutable"] == "true"
    assert provider["enableSecretMutable"] == "true"


def test_an_update_under_the_empty_passphrase_is_refused_before_anything_registers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulumi

    mocks = harness.RecordingMocks(preview=False)
    with pytest.raises(pulumi.RunError, match="PULUMI_CONFIG_PASSPHRASE: stack 'test' encrypts its secrets"):
        harness.run(BASE, monkeypatch=monkeypatch, mocks=mocks, environ={"PULUMI_CONFIG_PASSPHRASE": ""})
    assert mocks.resources == []
    allowed = harness.run(
        {**BASE, "goapp:allowEmptyPassphrase": True}, monkeypatch=monkeypatch, environ={"PULUMI_CONFIG_PASSPHRASE": ""}
    )
    assert allowed.mocks.one(DEPLOYMENT)
