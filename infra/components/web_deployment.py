"""WebDeployment: the pods of an HTTP service, with the probes, security and shutdown it needs in production."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import pulumi
import pulumi_kubernetes as k8s

from infra.components.app_config import LIVE_DIR, LIVE_FILE, LIVE_VOLUME, AppConfig
from infra.components.autoscaler import ReplicaRule
from infra.components.data_volume import VOLUME_NAME, DataVolume
from infra.components.identity import AppIdentity, object_meta
from infra.quantity import parse_quantity
from infra.settings import Resources, Shutdown, Spread

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
REVISION_ANNOTATION = "goapp.dev/config-checksum"

GOMEMLIMIT_SHARE = Decimal("0.9")
"""GOMEMLIMIT as a share of the memory limit. The Go runtime's limit covers only the memory it manages; stacks of
threads, cgo and the kernel's page cache charged to the cgroup are outside it. Aiming the collector at 90 % keeps
that headroom, so a busy pod collects garbage harder instead of being OOM-killed at the limit."""


@dataclass(frozen=True)
class WebDeploymentArgs:
    namespace: pulumi.Input[str]
    identity: AppIdentity
    image: pulumi.Input[str]
    """An immutable reference (repository@sha256:…), the ServiceImage's `ref`."""
    config: AppConfig
    """Injected with envFrom; its revision annotates the pods so they roll when it changes."""
    data: DataVolume
    """Mounted at /data (DATA_DIR)."""
    replicas: ReplicaRule
    """`fixed_replicas(n)`, or `AUTOSCALED` when an Autoscaler targets this deployment."""
    port: int = 8080
    resources: Resources = field(default_factory=Resources)
    shutdown: Shutdown = field(default_factory=Shutdown)
    spread: Spread | None = None
    """Spread the pods over nodes and zones; leave it out where only one pod can run."""


def gomemlimit(resources: Resources) -> str:
    """The soft memory limit for the Go runtime, in bytes (see GOMEMLIMIT_SHARE)."""
    return str(int(parse_quantity(resources.limits.memory) * GOMEMLIMIT_SHARE))


def derived_env(port: int, shutdown: Shutdown, resources: Resources, live: bool = False) -> dict[str, str]:
    """Variables the deployment derives from its own settings (the contract refuses them in goapp:env)."""
    env = {
        "PORT": str(port),
        "DATA_DIR": DATA_DIR,
        "SHUTDOWN_DRAIN": f"{shutdown.drain_seconds}s",
        "SHUTDOWN_TIMEOUT": f"{shutdown.timeout_seconds}s",
        "GOMEMLIMIT": gomemlimit(resources),
    }
    if live:
        env["CONFIG_FILE"] = f"{LIVE_DIR}/{LIVE_FILE}"
    return env


HOSTNAME_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"


def spread_constraints(selector: Mapping[str, str], spread: Spread) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """One constraint per failure domain, over this deployment's pods. `pod-template-hash` among the match keys
    spreads each ReplicaSet on its own, so a rollout's new pods are spread too, not only old and new together."""
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=spread.max_skew,
            topology_key=key,
            when_unsatisfiable=rule,
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
            match_label_keys=["pod-template-hash"],
            # A cordoned or tainted node is not a domain to balance against: with the default (Ignore), a drained
            # node would count as an empty domain and a hard rule would stop the evicted pods from landing elsewhere.
            node_taints_policy="Honor",
        )
        for key, rule in ((HOSTNAME_KEY, spread.hostname), (ZONE_KEY, spread.zone))
    ]


def http_probe(path: str, *, period: int, failures: int, timeout: int = 2) -> k8s.core.v1.ProbeArgs:
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


def resource_requirements(resources: Resources) -> k8s.core.v1.ResourceRequirementsArgs:
    requests = {
        "cpu": resources.requests.cpu,
        "memory": resources.requests.memory,
        "ephemeral-storage": resources.requests.ephemeral_storage,
    }
    limits = {"memory": resources.limits.memory, "ephemeral-storage": resources.limits.ephemeral_storage}
    if resources.limits.cpu is not None:
        limits["cpu"] = resources.limits.cpu
    return k8s.core.v1.ResourceRequirementsArgs(requests=requests, limits=limits)


def container(
    *,
    name: str,
    image: pulumi.Input[str],
    port: int,
    resources: Resources,
    shutdown: Shutdown,
    env_from: list[k8s.core.v1.EnvFromSourceArgs],
    live: bool = False,
) -> k8s.core.v1.ContainerArgs:
    env = derived_env(port, shutdown, resources, live)
    mounts = [
        k8s.core.v1.VolumeMountArgs(name=VOLUME_NAME, mount_path=DATA_DIR),
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TMP_DIR),
    ]
    if live:
        mounts.append(k8s.core.v1.VolumeMountArgs(name=LIVE_VOLUME, mount_path=LIVE_DIR, read_only=True))
    return k8s.core.v1.ContainerArgs(
        name=name,
        image=image,
        image_pull_policy="IfNotPresent",
        ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=port, protocol="TCP")],
        env_from=env_from,
        env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in env.items()],
        resources=resource_requirements(resources),
        startup_probe=http_probe(STARTUP_PATH, period=2, failures=30),
        liveness_probe=http_probe(LIVENESS_PATH, period=10, failures=3),
        readiness_probe=http_probe(READINESS_PATH, period=5, failures=2),
        lifecycle=k8s.core.v1.LifecycleArgs(
            # The image has no shell, so an exec sleep would fail; the kubelet's own sleep action works.
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                sleep=k8s.core.v1.SleepActionArgs(seconds=shutdown.pre_stop_seconds)
            )
            if shutdown.pre_stop_seconds > 0
            else None,
        ),
        security_context=container_security_context(),
        volume_mounts=mounts,
        termination_message_policy="FallbackToLogsOnError",
    )


def pod_annotations(revision: pulumi.Input[str], port: int) -> dict[str, pulumi.Input[str]]:
    return {
        REVISION_ANNOTATION: revision,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": METRICS_PATH,
    }


def pod_template(
    *,
    identity: AppIdentity,
    app: k8s.core.v1.ContainerArgs,
    revision: pulumi.Input[str],
    port: int,
    service_account: pulumi.Input[str],
    data: k8s.core.v1.VolumeArgs,
    grace_period_seconds: int,
    live: k8s.core.v1.VolumeArgs | None = None,
    spread: list[k8s.core.v1.TopologySpreadConstraintArgs] | None = None,
) -> k8s.core.v1.PodTemplateSpecArgs:
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=identity.labels, annotations=pod_annotations(revision, port)),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=service_account,
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security_context(),
            termination_grace_period_seconds=grace_period_seconds,
            containers=[app],
            topology_spread_constraints=spread,
            volumes=[
                data,
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                *([live] if live is not None else []),
            ],
        ),
    )


def deployment_strategy(single_pod: bool) -> k8s.apps.v1.DeploymentStrategyArgs:
    """A volume that admits one pod at a time would leave a surge pod waiting forever: stop the old one first."""
    if single_pod:
        return k8s.apps.v1.DeploymentStrategyArgs(type="Recreate")
    return k8s.apps.v1.DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
    )


def deployment_spec(
    *,
    selector: Mapping[str, str],
    template: k8s.core.v1.PodTemplateSpecArgs,
    replicas: ReplicaRule,
    single_pod: bool,
) -> k8s.apps.v1.DeploymentSpecArgs:
    return k8s.apps.v1.DeploymentSpecArgs(
        replicas=replicas.count,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
        strategy=deployment_strategy(single_pod),
        revision_history_limit=5,
        progress_deadline_seconds=300,
        template=template,
    )


class WebDeployment(pulumi.ComponentResource):
    """A Deployment `<name>` of one HTTP container and its own ServiceAccount `<name>`.

    Secure defaults built in: the pod meets the restricted Pod Security Standard (uid 65532, no privilege
    escalation, every capability dropped, RuntimeDefault seccomp, read-only root with an emptyDir at /tmp), the
    ServiceAccount mounts no token, no service links are injected. Production defaults: requests and limits,
    GOMEMLIMIT at 90 % of the memory limit, startup/liveness/readiness probes on distinct paths, a preStop sleep
    and a grace period covering preStop + drain + shutdown, RollingUpdate that never drops below the replica
    count (Recreate when the volume admits a single pod), Prometheus scrape annotations. Invariant: the pods
    roll exactly when the image, the pod settings or the injected configuration change.

    Outputs for the objects in front of it: `name`, `namespace`, `selector` (a dependency on the Deployment),
    `port` and `PORT_NAME`.
    """

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    selector: pulumi.Output[dict[str, str]]
    identity: AppIdentity
    port: int
    replicas: ReplicaRule

    def __init__(self, name: str, args: WebDeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:workload:WebDeployment", name, None, opts)
        if args.replicas.count is not None and args.replicas.count > 1 and args.data.single_pod:
            raise ValueError(f"WebDeployment {name!r}: its volume admits one pod, but {args.replicas.count} replicas")
        account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=object_meta(args.identity, name, args.namespace),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        app = container(
            name=args.identity.name,
            image=args.image,
            port=args.port,
            resources=args.resources,
            shutdown=args.shutdown,
            env_from=args.config.env_from,
            live=args.config.live_volume is not None,
        )
        template = pod_template(
            identity=args.identity,
            app=app,
            revision=args.config.revision,
            port=args.port,
            service_account=account.metadata.apply(lambda m: str(m.name)),
            data=args.data.volume,
            grace_period_seconds=args.shutdown.grace_period_seconds,
            live=args.config.live_volume,
            spread=spread_constraints(args.identity.selector, args.spread) if args.spread is not None else None,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=object_meta(args.identity, name, args.namespace),
            spec=deployment_spec(
                selector=args.identity.selector,
                template=template,
                replicas=args.replicas,
                single_pod=args.data.single_pod,
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=list(args.replicas.ignore_changes) or None),
        )
        self.identity = args.identity
        self.port = args.port
        self.replicas = args.replicas
        self.name = deployment.metadata.apply(lambda m: str(m.name))
        self.namespace = deployment.metadata.apply(lambda m: str(m.namespace))
        self.selector = deployment.spec.apply(lambda spec: dict(spec.selector.match_labels or {}))
        self.register_outputs({"name": self.name, "namespace": self.namespace})
