"""The checks behind every policy, as pure functions of a resource's properties.

Each returns a list of violation messages (empty when the resource complies); every message starts with
the name of the policy that raised it, so a blocked preview names what to fix and why. pack.py wraps them
as pulumi_policy policies; manifests.py runs them over rendered YAML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from goapp_policy.workloads import (
    RUN_TO_COMPLETION,
    Props,
    as_list,
    containers,
    describe,
    dig,
    pod_labels,
    pod_metadata,
    pod_spec,
)

POD_SECURITY = "pod-security-restricted"
READ_ONLY_ROOT = "read-only-root-filesystem"
RESOURCES = "container-resources"
PROBES = "health-probes"
IMAGE_DIGEST = "images-by-digest"
PROD_AVAILABILITY = "prod-availability"

# Restricted Pod Security Standard (Kubernetes 1.34), the parts a pod spec can break.
RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
ALLOWED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_SELINUX_TYPES = frozenset({"container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
VOLUME_NON_SOURCE_FIELDS = frozenset({"name"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

REQUIRED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))

DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")

PROD_MIN_REPLICAS = 3
TAG_STACKS_DEFAULT = ("local",)
"""Stacks whose images may be tags: the local one builds and runs its image on this machine."""
PROD_STACKS_DEFAULT = ("prod",)
SCALED_TYPES = frozenset({"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"})
HPA_TYPES = frozenset(
    {"kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "kubernetes:autoscaling/v1:HorizontalPodAutoscaler"}
)
PDB_TYPE = "kubernetes:policy/v1:PodDisruptionBudget"


def _msg(policy: str, resource_type: str, props: Props, detail: str) -> str:
    return f"{policy}: {describe(resource_type, props)}: {detail}"


def _effective(container: Props, pod: Props, field: str) -> Any:
    """A security setting as the kubelet applies it: the container's value wins over the pod's."""
    value = dig(container, "securityContext", field)
    return dig(pod, "securityContext", field) if value is None else value


def pod_security(resource_type: str, props: Props) -> list[str]:
    """The restricted Pod Security Standard, checked on the pod template of any workload."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    found: list[str] = []

    def add(detail: str) -> None:
        found.append(_msg(POD_SECURITY, resource_type, props, detail))

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            add(f"spec.{field} is true; host namespaces are not allowed (leave it unset or false)")
    for volume in as_list(spec.get("volumes")):
        sources = sorted(set(volume) - VOLUME_NON_SOURCE_FIELDS)
        for source in sources:
            if source not in RESTRICTED_VOLUME_TYPES:
                add(
                    f'volume "{volume.get("name", "?")}" uses {source}; allowed volume types are '
                    f"{', '.join(sorted(RESTRICTED_VOLUME_TYPES))}"
                )
    for sysctl in as_list(dig(spec, "securityContext", "sysctls")):
        name = sysctl.get("name") if isinstance(sysctl, Mapping) else None
        if name not in SAFE_SYSCTLS:
            add(f"sysctl {name} is not in the safe set ({', '.join(sorted(SAFE_SYSCTLS))})")
    for key, value in pod_metadata(resource_type, props, "annotations").items():
        if (
            key.startswith(APPARMOR_ANNOTATION)
            and value != "runtime/default"
            and not str(value).startswith("localhost/")
        ):
            add(f"annotation {key}: {value} is not allowed; use runtime/default or localhost/<profile>")
    if dig(spec, "securityContext", "windowsOptions", "hostProcess") is True:
        add("spec.securityContext.windowsOptions.hostProcess is true; host processes are not allowed")

    for label, container in containers(spec):
        security = container.get("securityContext")
        security = security if isinstance(security, Mapping) else {}
        if security.get("privileged") is True:
            add(f"{label} is privileged; set securityContext.privileged to false")
        if security.get("allowPrivilegeEscalation") is not False:
            add(f"{label} must set securityContext.allowPrivilegeEscalation to false")
        if _effective(container, spec, "runAsNonRoot") is not True:
            add(f"{label} must run with runAsNonRoot: true (on the container or the pod)")
        if _effective(container, spec, "runAsUser") == 0:
            add(f"{label} sets runAsUser 0 (root); use a non-zero UID")
        seccomp = dig(container, "securityContext", "seccompProfile", "type") or dig(
            spec, "securityContext", "seccompProfile", "type"
        )
        if seccomp not in ALLOWED_SECCOMP_TYPES:
            add(
                f"{label} has seccompProfile.type {seccomp!r}; "
                "set RuntimeDefault (or Localhost) on the container or pod"
            )
        drop = [str(c) for c in as_list(dig(security, "capabilities", "drop"))]
        if "ALL" not in drop:
            add(f'{label} must drop all capabilities (securityContext.capabilities.drop: ["ALL"])')
        for cap in as_list(dig(security, "capabilities", "add")):
            if cap not in ALLOWED_ADDED_CAPABILITIES:
                add(f"{label} adds capability {cap}; only NET_BIND_SERVICE may be added")
        for port in as_list(container.get("ports")):
            if isinstance(port, Mapping) and port.get("hostPort") not in (None, 0):
                add(f"{label} uses hostPort {port.get('hostPort')}; host ports are not allowed")
        if security.get("procMount") not in (None, "Default"):
            add(f"{label} sets procMount {security.get('procMount')}; only Default is allowed")
        if dig(security, "windowsOptions", "hostProcess") is True:
            add(f"{label} sets windowsOptions.hostProcess; host processes are not allowed")
        apparmor = _effective(container, spec, "appArmorProfile")
        if isinstance(apparmor, Mapping) and apparmor.get("type") not in ALLOWED_APPARMOR_TYPES:
            add(f"{label} has appArmorProfile.type {apparmor.get('type')!r}; use RuntimeDefault or Localhost")
        selinux = _effective(container, spec, "seLinuxOptions")
        if isinstance(selinux, Mapping):
            if selinux.get("type") not in (None, *ALLOWED_SELINUX_TYPES):
                add(f"{label} has seLinuxOptions.type {selinux.get('type')!r}, which is not allowed")
            if selinux.get("user") or selinux.get("role"):
                add(f"{label} sets seLinuxOptions user or role, which is not allowed")
    return found


def read_only_root(resource_type: str, props: Props) -> list[str]:
    """Every container's root filesystem is read-only; writable paths are explicit volumes."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    return [
        _msg(READ_ONLY_ROOT, resource_type, props, f"{label} must set securityContext.readOnlyRootFilesystem: true")
        for label, container in containers(spec)
        if dig(container, "securityContext", "readOnlyRootFilesystem") is not True
    ]


def container_resources(resource_type: str, props: Props) -> list[str]:
    """CPU and memory requests and limits on every init and app container."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    found = []
    for label, container in containers(spec):
        if label.startswith("ephemeralContainer"):
            continue  # the API forbids resources on ephemeral (debug) containers
        missing = [
            f"{kind}.{name}"
            for kind, name in REQUIRED_RESOURCES
            if dig(container, "resources", kind, name) in (None, "")
        ]
        if missing:
            found.append(_msg(RESOURCES, resource_type, props, f"{label} lacks resources {', '.join(missing)}"))
    return found


def _probe_target(probe: Props) -> str:
    """What a probe asks, for telling liveness and readiness apart, e.g. 'GET :http/healthz'."""
    if isinstance(probe.get("httpGet"), Mapping):
        path = str(dig(probe, "httpGet", "path") or "/")
        return f"GET :{dig(probe, 'httpGet', 'port')}{path.rstrip('/') or '/'}"
    for handler in ("tcpSocket", "grpc", "exec"):
        if probe.get(handler) is not None:
            return f"{handler} {probe.get(handler)!r}"
    return "no handler"


def health_probes(resource_type: str, props: Props) -> list[str]:
    """Liveness and readiness probes on every long-running container, asking different things.

    A shared endpoint makes a dependency outage restart every pod instead of only taking it out of rotation.
    """
    spec = pod_spec(resource_type, props)
    if spec is None or resource_type in RUN_TO_COMPLETION:
        return []
    found = []
    for container in as_list(spec.get("containers")):
        label = f'container "{container.get("name", "?")}"'
        liveness, readiness = container.get("livenessProbe"), container.get("readinessProbe")
        missing = [name for name, probe in (("livenessProbe", liveness), ("readinessProbe", readiness)) if not probe]
        if missing:
            found.append(_msg(PROBES, resource_type, props, f"{label} lacks {' and '.join(missing)}"))
            continue
        if _probe_target(liveness) == _probe_target(readiness):
            found.append(
                _msg(
                    PROBES,
                    resource_type,
                    props,
                    f"{label} has liveness and readiness on the same target ({_probe_target(liveness)}); "
                    "give them distinct paths",
                )
            )
    return found


def images_by_digest(resource_type: str, props: Props, stack: str | None, tag_stacks: Iterable[str]) -> list[str]:
    """Outside the stacks in tag_stacks every image is pinned by digest, so what was tested is what runs.

    An unknown stack (None) is treated as one that needs digests: the policy fails closed.
    """
    spec = pod_spec(resource_type, props)
    if spec is None or (stack is not None and stack in set(tag_stacks)):
        return []
    return [
        _msg(
            IMAGE_DIGEST,
            resource_type,
            props,
            f"{label} image {container.get('image')!r} is not pinned by digest (name@sha256:<64 hex>) "
            f"in stack {stack!r}; tags are allowed only in {', '.join(sorted(tag_stacks)) or 'no stack'}",
        )
        for label, container in containers(spec)
        if not DIGEST_RE.search(str(container.get("image") or ""))
    ]


def _selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics; an empty or missing selector selects nothing here."""
    if not isinstance(selector, Mapping):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = as_list(selector.get("matchExpressions"))
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, operator, values = (
            expression.get("key"),
            expression.get("operator"),
            list(as_list(expression.get("values"))),
        )
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _int(value: Any, default: int) -> int:
    """A count from the properties; the engine sends numbers as JSON numbers, so 3 may arrive as 3.0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return default
    return int(value)


def _blocks_nothing(pdb: Props) -> bool:
    """A budget that allows every pod to go at once protects nothing."""
    min_available, max_unavailable = dig(pdb, "spec", "minAvailable"), dig(pdb, "spec", "maxUnavailable")
    return min_available in (0, "0%") or max_unavailable == "100%"


def prod_availability(
    resources: Iterable[tuple[str, Props]], stack: str | None, prod_stacks: Iterable[str]
) -> list[str]:
    """The messages of prod_availability_by_resource."""
    return [message for _, message in prod_availability_by_resource(resources, stack, prod_stacks)]


def prod_availability_by_resource(
    resources: Iterable[tuple[str, Props]], stack: str | None, prod_stacks: Iterable[str]
) -> list[tuple[int, str]]:
    """In production stacks, every Deployment and StatefulSet keeps at least three pods and has a PDB.

    Three comes from an HPA targeting it with minReplicas >= 3, or else from spec.replicas >= 3. Each finding
    comes with the position of the offending resource in `resources`, so the caller can name its URN.
    An unknown stack (None) is held to production rules: the policy fails closed.
    """
    if stack is not None and stack not in set(prod_stacks):
        return []
    resources = list(resources)
    found: list[tuple[int, str]] = []
    for index, (resource_type, props) in enumerate(resources):
        if resource_type not in SCALED_TYPES:
            continue
        kind = resource_type.rsplit(":", 1)[-1]
        name, namespace = dig(props, "metadata", "name"), dig(props, "metadata", "namespace")

        def add(detail: str, resource_type: str = resource_type, props: Props = props, index: int = index) -> None:
            found.append((index, _msg(PROD_AVAILABILITY, resource_type, props, detail)))

        def same_namespace(other: Props, namespace: Any = namespace) -> bool:
            return bool(dig(other, "metadata", "namespace") == namespace)

        hpas = [
            p
            for t, p in resources
            if t in HPA_TYPES
            and same_namespace(p)
            and dig(p, "spec", "scaleTargetRef", "kind") == kind
            and dig(p, "spec", "scaleTargetRef", "name") == name
        ]
        if hpas:
            floor = min(_int(dig(p, "spec", "minReplicas"), 1) for p in hpas)
            if floor < PROD_MIN_REPLICAS:
                add(
                    f"its HorizontalPodAutoscaler has minReplicas {floor}; "
                    f"production needs at least {PROD_MIN_REPLICAS}"
                )
        else:
            replicas = _int(dig(props, "spec", "replicas"), 1)
            if replicas < PROD_MIN_REPLICAS:
                add(
                    f"runs {replicas} replica(s) and no HorizontalPodAutoscaler targets it; production needs "
                    f"replicas >= {PROD_MIN_REPLICAS} or an HPA with minReplicas >= {PROD_MIN_REPLICAS}"
                )
        labels = pod_labels(resource_type, props)
        budgets = [
            p
            for t, p in resources
            if t == PDB_TYPE and same_namespace(p) and _selects(dig(p, "spec", "selector"), labels)
        ]
        if not budgets:
            add("no PodDisruptionBudget selects its pods")
        elif all(_blocks_nothing(p) for p in budgets):
            add(
                "its PodDisruptionBudget allows every pod to be evicted at once (minAvailable 0 or maxUnavailable 100%)"
            )
    return found
