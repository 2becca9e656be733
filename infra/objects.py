"""Pure functions from validated settings to Kubernetes object arguments.

Nothing here registers a resource: components call these and pass the results to
pulumi_kubernetes, so every safe default can be tested without an engine. Label logic,
probe paths and the pod security context live here once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from infra.settings import Settings

APP_NAME = "goapp"
CONTAINER_NAME = "goapp"
PORT_NAME = "http"
DATA_DIR = "/data"
TMP_DIR = "/tmp"
APP_UID = 65532

LIVENESS_PATH = "/healthz"
"""Process-local: restarts a wedged process, never depends on the disk."""
READINESS_PATH = "/readyz"
"""Config loaded and data directory writable; 503 from the moment shutdown begins."""
STARTUP_PATH = "/startupz"
"""Initialisation finished once; holds liveness off during a slow first start."""
METRICS_PATH = "/metrics"

PSS_LEVEL = "restricted"
CHECKSUM_ANNOTATION = "goapp.dev/config-checksum"


# --- labels ----------------------------------------------------------------------------------


def selector_labels(settings: Settings) -> dict[str, str]:
    """The immutable subset: a Deployment selector can never change without a replace."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": settings.instance,
    }


def common_labels(settings: Settings) -> dict[str, str]:
    return {
        **selector_labels(settings),
        "app.kubernetes.io/version": _label_value(settings.build.version),
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": APP_NAME,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _label_value(text: str) -> str:
    """Label values are at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in text)[:63].strip("_.-")
    return cleaned or "unknown"


def metadata(settings: Settings, name: str, **extra: object) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=settings.config.namespace,
        labels=common_labels(settings),
        **extra,  # type: ignore[arg-type]
    )


# --- namespace -------------------------------------------------------------------------------


def namespace_labels(settings: Settings) -> dict[str, str]:
    """Pod Security Admission enforces the restricted standard on everything in the namespace."""
    return {
        **common_labels(settings),
        "pod-security.kubernetes.io/enforce": PSS_LEVEL,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": PSS_LEVEL,
        "pod-security.kubernetes.io/warn": PSS_LEVEL,
    }


# --- configuration ---------------------------------------------------------------------------


def app_env(settings: Settings) -> dict[str, str]:
    """The ConfigMap's data: the stack's goapp:env plus the variables derived from other keys."""
    config = settings.config
    return {
        **config.env,
        "PORT": str(config.port),
        "DATA_DIR": DATA_DIR,
        "SHUTDOWN_DRAIN": f"{config.shutdown.drain_seconds}s",
        "SHUTDOWN_TIMEOUT": f"{config.shutdown.timeout_seconds}s",
    }


def config_checksum(env: Mapping[str, str], secret_env: Mapping[str, str]) -> str:
    """A digest of everything injected as environment, so pods roll exactly when it changes.

    The secret half is only ever hashed, like Helm's checksum/secret idiom; the component keeps
    the result a Pulumi secret so not even the hash reaches the state in plaintext.
    """
    document = json.dumps({"env": dict(env), "secretEnv": dict(secret_env)}, sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()


# --- pod -------------------------------------------------------------------------------------


def _http_probe(path: str, *, period: int, failures: int, timeout: int = 2) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=PORT_NAME),
        period_seconds=period,
        failure_threshold=failures,
        timeout_seconds=timeout,
    )


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=APP_UID,
        run_as_group=APP_UID,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=APP_UID,
        run_as_group=APP_UID,
        fs_group=APP_UID,
        # Skip the recursive chown of a large volume on every start once ownership is right.
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container(
    settings: Settings, image: pulumi.Input[str], config_map: str, secret: str | None
) -> k8s.core.v1.ContainerArgs:
    config = settings.config
    env_from = [k8s.core.v1.EnvFromSourceArgs(config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=config_map))]
    if secret is not None:
        env_from.append(k8s.core.v1.EnvFromSourceArgs(secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret)))
    resources = config.resources
    requests = {
        "cpu": resources.requests.cpu,
        "memory": resources.requests.memory,
        "ephemeral-storage": resources.requests.ephemeral_storage,
    }
    limits = {"memory": resources.limits.memory, "ephemeral-storage": resources.limits.ephemeral_storage}
    if resources.limits.cpu is not None:
        limits["cpu"] = resources.limits.cpu
    return k8s.core.v1.ContainerArgs(
        name=CONTAINER_NAME,
        image=image,
        image_pull_policy="IfNotPresent",
        ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=config.port, protocol="TCP")],
        env_from=env_from,
        env=[
            # The Go runtime does not read the cgroup memory limit; without this it grows past it and is OOM-killed.
            k8s.core.v1.EnvVarArgs(
                name="GOMEMLIMIT",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    resource_field_ref=k8s.core.v1.ResourceFieldSelectorArgs(
                        container_name=CONTAINER_NAME, resource="limits.memory", divisor="1"
                    )
                ),
            ),
        ],
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=requests, limits=limits),
        startup_probe=_http_probe(STARTUP_PATH, period=2, failures=30),
        liveness_probe=_http_probe(LIVENESS_PATH, period=10, failures=3),
        readiness_probe=_http_probe(READINESS_PATH, period=5, failures=2),
        lifecycle=k8s.core.v1.LifecycleArgs(
            # The image has no shell, so an exec sleep would fail; the kubelet's own sleep action works.
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                sleep=k8s.core.v1.SleepActionArgs(seconds=config.shutdown.pre_stop_seconds)
            )
            if config.shutdown.pre_stop_seconds > 0
            else None,
        ),
        security_context=container_security_context(),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name="data", mount_path=DATA_DIR),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TMP_DIR),
        ],
        termination_message_policy="FallbackToLogsOnError",
    )


def pod_annotations(checksum: pulumi.Input[str], port: int) -> dict[str, pulumi.Input[str]]:
    return {
        CHECKSUM_ANNOTATION: checksum,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": METRICS_PATH,
    }


def pod_template(
    settings: Settings,
    *,
    image: pulumi.Input[str],
    checksum: pulumi.Input[str],
    service_account: str,
    config_map: str,
    secret: str | None,
    claim: str,
) -> k8s.core.v1.PodTemplateSpecArgs:
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels=common_labels(settings),
            annotations=pod_annotations(checksum, settings.config.port),
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security_context(),
            termination_grace_period_seconds=settings.config.shutdown.grace_period_seconds,
            containers=[container(settings, image, config_map, secret)],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="data",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim),
                ),
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
            ],
        ),
    )


# --- workload --------------------------------------------------------------------------------


def deployment_strategy(settings: Settings) -> k8s.apps.v1.DeploymentStrategyArgs:
    """ReadWriteOncePod admits one pod at a time: a surge pod would wait forever for the volume."""
    if settings.config.storage.access_mode == "ReadWriteOncePod":
        return k8s.apps.v1.DeploymentStrategyArgs(type="Recreate")
    return k8s.apps.v1.DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
    )


def deployment_spec(settings: Settings, template: k8s.core.v1.PodTemplateSpecArgs) -> k8s.apps.v1.DeploymentSpecArgs:
    """Under an HPA the replica count is left out, so applying the program never fights the autoscaler."""
    return k8s.apps.v1.DeploymentSpecArgs(
        replicas=None if settings.config.autoscaling else settings.config.replicas,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(settings)),
        strategy=deployment_strategy(settings),
        revision_history_limit=5,
        progress_deadline_seconds=300,
        template=template,
    )


def service_spec(settings: Settings) -> k8s.core.v1.ServiceSpecArgs:
    service = settings.config.service
    return k8s.core.v1.ServiceSpecArgs(
        type=service.type,
        selector=selector_labels(settings),
        ports=[
            k8s.core.v1.ServicePortArgs(
                name=PORT_NAME,
                port=service.port,
                target_port=PORT_NAME,
                protocol="TCP",
                node_port=service.node_port,
            )
        ],
    )


def claim_spec(settings: Settings) -> k8s.core.v1.PersistentVolumeClaimSpecArgs:
    storage = settings.config.storage
    return k8s.core.v1.PersistentVolumeClaimSpecArgs(
        access_modes=[storage.access_mode],
        storage_class_name=storage.storage_class,
        resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": storage.size}),
    )


def autoscaler_spec(settings: Settings, deployment: str) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs | None:
    scaling = settings.config.autoscaling
    if scaling is None:
        return None
    return k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
            api_version="apps/v1", kind="Deployment", name=deployment
        ),
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        metrics=[
            k8s.autoscaling.v2.MetricSpecArgs(
                type="Resource",
                resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                    name="cpu",
                    target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="Utilization", average_utilization=scaling.cpu_utilization
                    ),
                ),
            )
        ],
    )


def disruption_budget_spec(settings: Settings) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs | None:
    """Only when more than one replica can run: a budget over one pod would block every node drain."""
    if settings.config.max_replicas <= 1:
        return None
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(settings)),
        # A pod that never became ready protects nothing; let drains evict it.
        unhealthy_pod_eviction_policy="AlwaysAllow",
    )


def network_policy_spec(settings: Settings) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Pods accept traffic only on the app port and may only reach cluster DNS."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(settings)),
        policy_types=["Ingress", "Egress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=PORT_NAME, protocol="TCP")]
            )
        ],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="UDP"),
                    k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="TCP"),
                ]
            )
        ],
    )


def dns_name(settings: Settings, service: str) -> str:
    return f"{service}.{settings.config.namespace}.svc.cluster.local"
