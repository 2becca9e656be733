"""The policy checks as pure functions: each passes the good fixture and names itself when it fails."""

from collections.abc import Callable
from typing import Any

import pytest
from goapp_policy import checks
from goapp_policy.workloads import type_token

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
Container = Callable[[dict[str, Any]], dict[str, Any]]


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def all_violations(objects: list[dict[str, Any]], stack: str) -> list[str]:
    from goapp_policy.manifests import violations

    found: list[str] = violations([(type_token(o["apiVersion"], o["kind"]), o) for o in objects], stack)
    return found


@pytest.mark.parametrize("stack", ["local", "dev", "staging", "prod"])
def test_good_prod_fixture_passes_every_policy_in_every_stack(prod_objects: list[dict[str, Any]], stack: str) -> None:
    assert all_violations(prod_objects, stack) == []


def test_type_token_maps_core_and_grouped_api_versions() -> None:
    assert type_token("v1", "Service") == "kubernetes:core/v1:Service"
    assert type_token("apps/v1", "Deployment") == DEPLOYMENT
    assert type_token("networking.k8s.io/v1", "NetworkPolicy") == "kubernetes:networking.k8s.io/v1:NetworkPolicy"


# --- pod-security-restricted -------------------------------------------------------------------------


def test_privileged_root_container_breaks_the_restricted_standard(
    deployment: dict[str, Any], container_of: Container
) -> None:
    security = container_of(deployment)["securityContext"]
    security.update(privileged=True, allowPrivilegeEscalation=True, runAsNonRoot=False, runAsUser=0)
    found = checks.pod_security(DEPLOYMENT, deployment)
    assert all(m.startswith("pod-security-restricted: Deployment goapp-prod/goapp: ") for m in found)
    assert any('container "goapp" is privileged' in m for m in found)
    assert any("allowPrivilegeEscalation to false" in m for m in found)
    assert any("runAsNonRoot: true" in m for m in found)
    assert any("runAsUser 0 (root)" in m for m in found)


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces_are_refused(deployment: dict[str, Any], field: str) -> None:
    pod(deployment)[field] = True
    assert checks.pod_security(DEPLOYMENT, deployment) == [
        f"pod-security-restricted: Deployment goapp-prod/goapp: spec.{field} is true; host namespaces are not "
        "allowed (leave it unset or false)"
    ]


def test_host_path_volume_is_refused(deployment: dict[str, Any]) -> None:
    pod(deployment)["volumes"].append({"name": "node", "hostPath": {"path": "/"}})
    [message] = checks.pod_security(DEPLOYMENT, deployment)
    assert message.startswith('pod-security-restricted: Deployment goapp-prod/goapp: volume "node" uses hostPath;')


def test_capabilities_must_drop_all_and_add_only_net_bind_service(
    deployment: dict[str, Any], container_of: Container
) -> None:
    container_of(deployment)["securityContext"]["capabilities"] = {"drop": ["NET_RAW"], "add": ["SYS_ADMIN"]}
    found = checks.pod_security(DEPLOYMENT, deployment)
    assert any('must drop all capabilities (securityContext.capabilities.drop: ["ALL"])' in m for m in found)
    assert any("adds capability SYS_ADMIN; only NET_BIND_SERVICE may be added" in m for m in found)
    container_of(deployment)["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert checks.pod_security(DEPLOYMENT, deployment) == []


def test_seccomp_may_come_from_the_pod_but_must_be_runtime_default(
    deployment: dict[str, Any], container_of: Container
) -> None:
    del container_of(deployment)["securityContext"]["seccompProfile"]
    assert checks.pod_security(DEPLOYMENT, deployment) == []  # the pod-level RuntimeDefault applies
    pod(deployment)["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    [message] = checks.pod_security(DEPLOYMENT, deployment)
    assert "seccompProfile.type 'Unconfined'" in message
    assert message.startswith("pod-security-restricted: ")


def test_run_as_non_root_may_come_from_the_pod(deployment: dict[str, Any], container_of: Container) -> None:
    del container_of(deployment)["securityContext"]["runAsNonRoot"]
    assert checks.pod_security(DEPLOYMENT, deployment) == []
    del pod(deployment)["securityContext"]["runAsNonRoot"]
    [message] = checks.pod_security(DEPLOYMENT, deployment)
    assert "must run with runAsNonRoot: true" in message


def test_init_containers_are_held_to_the_same_standard(deployment: dict[str, Any]) -> None:
    pod(deployment)["initContainers"] = [{"name": "migrate", "image": "x", "securityContext": {"privileged": True}}]
    found = checks.pod_security(DEPLOYMENT, deployment)
    assert any('initContainer "migrate" is privileged' in m for m in found)


def test_host_port_proc_mount_and_unsafe_sysctl_are_refused(
    deployment: dict[str, Any], container_of: Container
) -> None:
    container = container_of(deployment)
    container["ports"][0]["hostPort"] = 8080
    container["securityContext"]["procMount"] = "Unmasked"
    pod(deployment)["securityContext"]["sysctls"] = [{"name": "kernel.msgmax", "value": "1"}]
    found = " | ".join(checks.pod_security(DEPLOYMENT, deployment))
    assert "uses hostPort 8080" in found
    assert "procMount Unmasked" in found
    assert "sysctl kernel.msgmax" in found


@pytest.mark.parametrize(
    ("pod_field", "pod_value", "container_value", "expected"),
    [
        ("runAsNonRoot", False, True, "spec.securityContext.runAsNonRoot is false"),
        ("runAsUser", 0, 65532, "spec.securityContext.runAsUser is 0 (root)"),
        ("seccompProfile", {"type": "Unconfined"}, {"type": "RuntimeDefault"}, "seccompProfile.type 'Unconfined'"),
        ("appArmorProfile", {"type": "Unconfined"}, {"type": "RuntimeDefault"}, "appArmorProfile.type 'Unconfined'"),
        ("seLinuxOptions", {"role": "sysadm_r"}, {"type": "container_t"}, "seLinuxOptions sets role 'sysadm_r'"),
    ],
)
def test_a_bad_pod_level_value_fails_even_when_the_container_overrides_it(
    deployment: dict[str, Any],
    container_of: Container,
    pod_field: str,
    pod_value: Any,
    container_value: Any,
    expected: str,
) -> None:
    """As Kubernetes' evaluator judges it: every container added later would inherit the pod's value."""
    pod(deployment)["securityContext"][pod_field] = pod_value
    container_of(deployment)["securityContext"][pod_field] = container_value
    [message] = checks.pod_security(DEPLOYMENT, deployment)
    assert message.startswith("pod-security-restricted: Deployment goapp-prod/goapp: spec.securityContext.")
    assert expected in message


@pytest.mark.parametrize(
    ("field", "handler"),
    [
        ("livenessProbe", {"httpGet": {"path": "/healthz", "port": 8080, "host": "node.invalid"}}),
        ("startupProbe", {"tcpSocket": {"port": 8080, "host": "node.invalid"}}),
        ("lifecycle", {"preStop": {"httpGet": {"path": "/drain", "port": 8080, "host": "node.invalid"}}}),
    ],
)
def test_probes_and_lifecycle_handlers_may_not_aim_at_another_host(
    deployment: dict[str, Any], container_of: Container, field: str, handler: dict[str, Any]
) -> None:
    container_of(deployment)[field] = handler
    [message] = checks.pod_security(DEPLOYMENT, deployment)
    assert "host 'node.invalid'; probes and lifecycle handlers may only reach the pod itself" in message
    container_of(deployment)[field] = {"tcpSocket": {"port": 8080, "host": ""}}
    assert checks.pod_security(DEPLOYMENT, deployment) == []


def test_windows_pods_need_no_linux_only_settings(deployment: dict[str, Any], container_of: Container) -> None:
    security = container_of(deployment)["securityContext"]
    for field in ("allowPrivilegeEscalation", "capabilities", "seccompProfile"):
        del security[field]
    del pod(deployment)["securityContext"]["seccompProfile"]
    assert len(checks.pod_security(DEPLOYMENT, deployment)) == 3
    pod(deployment)["os"] = {"name": "windows"}
    assert checks.pod_security(DEPLOYMENT, deployment) == []
    security["privileged"] = True  # the rest of the standard still holds
    assert len(checks.pod_security(DEPLOYMENT, deployment)) == 1


def test_what_kubernetes_1_34_allows_is_allowed(deployment: dict[str, Any], container_of: Container) -> None:
    spec = pod(deployment)
    spec["securityContext"]["sysctls"] = [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]
    spec["securityContext"]["seLinuxOptions"] = {"type": "", "level": "s0"}
    spec["volumes"] += [
        {"name": "assets", "image": {"reference": "assets:1"}},
        {"name": "x", "emptyDir": {}, "nfs": None},
    ]
    deployment["spec"]["template"]["metadata"]["annotations"][
        "container.apparmor.security.beta.kubernetes.io/goapp"
    ] = ""
    container_of(deployment)["securityContext"]["seLinuxOptions"] = {"type": "container_engine_t"}
    assert checks.pod_security(DEPLOYMENT, deployment) == []


def test_cron_job_pod_templates_are_found() -> None:
    cron = {
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "x"}]}}}}},
    }
    found = checks.pod_security("kubernetes:batch/v1:CronJob", cron)
    assert found
    assert all(m.startswith("pod-security-restricted: CronJob nightly: ") for m in found)


def test_resources_without_pods_are_not_checked() -> None:
    service = {"metadata": {"name": "goapp"}, "spec": {"ports": [{"port": 80}]}}
    assert checks.pod_security("kubernetes:core/v1:Service", service) == []
    assert checks.container_resources("kubernetes:core/v1:Service", service) == []


# --- read-only-root-filesystem, container-resources, health-probes ----------------------------------------


def test_writable_root_filesystem_is_refused(deployment: dict[str, Any], container_of: Container) -> None:
    container_of(deployment)["securityContext"]["readOnlyRootFilesystem"] = False
    assert checks.read_only_root(DEPLOYMENT, deployment) == [
        'read-only-root-filesystem: Deployment goapp-prod/goapp: container "goapp" must set '
        "securityContext.readOnlyRootFilesystem: true"
    ]


def test_missing_limits_are_named(deployment: dict[str, Any], container_of: Container) -> None:
    del container_of(deployment)["resources"]["limits"]
    assert checks.container_resources(DEPLOYMENT, deployment) == [
        'container-resources: Deployment goapp-prod/goapp: container "goapp" lacks resources limits.cpu, limits.memory'
    ]


def test_missing_requests_are_named(deployment: dict[str, Any], container_of: Container) -> None:
    del container_of(deployment)["resources"]
    [message] = checks.container_resources(DEPLOYMENT, deployment)
    assert message.endswith("lacks resources requests.cpu, requests.memory, limits.cpu, limits.memory")


def test_probes_are_required(deployment: dict[str, Any], container_of: Container) -> None:
    del container_of(deployment)["readinessProbe"]
    assert checks.health_probes(DEPLOYMENT, deployment) == [
        'health-probes: Deployment goapp-prod/goapp: container "goapp" lacks readinessProbe'
    ]


def test_liveness_and_readiness_on_the_same_path_are_refused(
    deployment: dict[str, Any], container_of: Container
) -> None:
    container = container_of(deployment)
    container["readinessProbe"]["httpGet"]["path"] = "/healthz/"  # a trailing slash is the same endpoint
    [message] = checks.health_probes(DEPLOYMENT, deployment)
    assert message.startswith(
        'health-probes: Deployment goapp-prod/goapp: container "goapp" has liveness and readiness'
    )
    assert "GET :http/healthz" in message
    assert "distinct paths" in message


def test_jobs_need_no_probes() -> None:
    job = {"metadata": {"name": "once"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    assert checks.health_probes("kubernetes:batch/v1:Job", job) == []


# --- images-by-digest --------------------------------------------------------------------------------------


def test_tags_are_allowed_only_in_the_local_stack(deployment: dict[str, Any], container_of: Container) -> None:
    container_of(deployment)["image"] = "127.0.0.1:5000/goapp:1.0.0"
    assert checks.images_by_digest(DEPLOYMENT, deployment, "local", ["local"]) == []
    for stack in ("dev", "staging", "prod"):
        [message] = checks.images_by_digest(DEPLOYMENT, deployment, stack, ["local"])
        assert message.startswith('images-by-digest: Deployment goapp-prod/goapp: container "goapp" image ')
        assert f"in stack '{stack}'" in message


def test_unknown_stack_fails_closed(deployment: dict[str, Any], container_of: Container) -> None:
    container_of(deployment)["image"] = "goapp:latest"
    [message] = checks.images_by_digest(DEPLOYMENT, deployment, None, ["local"])
    assert "in stack None" in message


@pytest.mark.parametrize(
    "image",
    ["goapp@sha256:abc", "goapp:1.0@sha256:" + "A" * 64, "goapp@sha512:" + "a" * 64, "goapp"],
)
def test_only_a_full_sha256_digest_counts(deployment: dict[str, Any], container_of: Container, image: str) -> None:
    container_of(deployment)["image"] = image
    assert len(checks.images_by_digest(DEPLOYMENT, deployment, "prod", ["local"])) == 1


def test_tag_and_digest_together_pass(deployment: dict[str, Any], container_of: Container) -> None:
    container_of(deployment)["image"] = "registry.example.com/goapp:1.0@sha256:" + "0" * 64
    assert checks.images_by_digest(DEPLOYMENT, deployment, "prod", ["local"]) == []


# --- prod-availability (stack policy) ----------------------------------------------------------------------


def _tokens(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(type_token(o["apiVersion"], o["kind"]), o) for o in objects]


def test_prod_needs_a_disruption_budget(prod_objects: list[dict[str, Any]]) -> None:
    objects = [o for o in prod_objects if o["kind"] != "PodDisruptionBudget"]
    assert checks.prod_availability(_tokens(objects), "prod", ["prod"]) == [
        "prod-availability: Deployment goapp-prod/goapp: no PodDisruptionBudget selects its pods"
    ]
    assert checks.prod_availability(_tokens(objects), "staging", ["prod"]) == []


def test_a_budget_for_other_pods_does_not_count(prod_objects: list[dict[str, Any]]) -> None:
    pdb = next(o for o in prod_objects if o["kind"] == "PodDisruptionBudget")
    pdb["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "other"}}
    assert checks.prod_availability(_tokens(prod_objects), "prod", ["prod"]) == [
        "prod-availability: Deployment goapp-prod/goapp: no PodDisruptionBudget selects its pods"
    ]


def test_a_budget_that_allows_everything_does_not_count(prod_objects: list[dict[str, Any]]) -> None:
    pdb = next(o for o in prod_objects if o["kind"] == "PodDisruptionBudget")
    pdb["spec"] = {"maxUnavailable": "100%", "selector": pdb["spec"]["selector"]}
    [message] = checks.prod_availability(_tokens(prod_objects), "prod", ["prod"])
    assert message.startswith("prod-availability: Deployment goapp-prod/goapp: its PodDisruptionBudget allows every")


def test_prod_hpa_floor_must_be_three(prod_objects: list[dict[str, Any]]) -> None:
    hpa = next(o for o in prod_objects if o["kind"] == "HorizontalPodAutoscaler")
    hpa["spec"]["minReplicas"] = 2
    assert checks.prod_availability(_tokens(prod_objects), "prod", ["prod"]) == [
        "prod-availability: Deployment goapp-prod/goapp: its HorizontalPodAutoscaler has minReplicas 2; "
        "production needs at least 3"
    ]


def test_without_hpa_prod_needs_three_replicas(prod_objects: list[dict[str, Any]]) -> None:
    objects = [o for o in prod_objects if o["kind"] != "HorizontalPodAutoscaler"]
    [message] = checks.prod_availability(_tokens(objects), "prod", ["prod"])
    assert message.startswith("prod-availability: Deployment goapp-prod/goapp: runs 1 replica(s)")
    next(o for o in objects if o["kind"] == "Deployment")["spec"]["replicas"] = 3
    assert checks.prod_availability(_tokens(objects), "prod", ["prod"]) == []


def test_an_hpa_in_another_namespace_does_not_count(prod_objects: list[dict[str, Any]]) -> None:
    hpa = next(o for o in prod_objects if o["kind"] == "HorizontalPodAutoscaler")
    hpa["metadata"]["namespace"] = "elsewhere"
    [message] = checks.prod_availability(_tokens(prod_objects), "prod", ["prod"])
    assert "runs 1 replica(s) and no HorizontalPodAutoscaler targets it" in message


def test_match_expressions_select_like_kubernetes(prod_objects: list[dict[str, Any]]) -> None:
    pdb = next(o for o in prod_objects if o["kind"] == "PodDisruptionBudget")
    pdb["spec"]["selector"] = {
        "matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["goapp"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ]
    }
    assert checks.prod_availability(_tokens(prod_objects), "prod", ["prod"]) == []
    pdb["spec"]["selector"]["matchExpressions"][1]["operator"] = "Exists"
    assert len(checks.prod_availability(_tokens(prod_objects), "prod", ["prod"])) == 1


def test_unknown_stack_is_held_to_prod_rules(prod_objects: list[dict[str, Any]]) -> None:
    objects = [o for o in prod_objects if o["kind"] != "PodDisruptionBudget"]
    assert len(checks.prod_availability(_tokens(objects), None, ["prod"])) == 1


def test_unconfined_apparmor_annotation_is_refused(deployment: dict[str, Any]) -> None:
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    annotations["container.apparmor.security.beta.kubernetes.io/goapp"] = "unconfined"
    [message] = checks.pod_security(DEPLOYMENT, deployment)
    assert message.startswith("pod-security-restricted: Deployment goapp-prod/goapp: annotation container.apparmor")
    annotations["container.apparmor.security.beta.kubernetes.io/goapp"] = "runtime/default"
    assert checks.pod_security(DEPLOYMENT, deployment) == []
