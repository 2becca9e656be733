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

# Restricted Pod Security Standard as Kubernetes 1.34 evaluates it at version "latest" (what our namespaces
# enforce): the checks of k8s.io/pod-security-admission's policy package at the cluster's version, which
# tests/policy/test_gates_psa.py runs side by side with this one on every rendered stack.
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
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
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
PROBES_WITH_HOST = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")
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


def _security(item: Props) -> Props:
    """An object's securityContext, empty when unset or null."""
    security = item.get("securityContext")
    return security if isinstance(security, Mapping) else {}


def _is_windows(spec: Props) -> bool:
    """Pods for Windows nodes: Linux-only settings (privilege escalation, capabilities, seccomp) are not
    required of them, and the API server refuses them there."""
    return bool(dig(spec, "os", "name") == "windows")


def _bad_selinux(options: Any) -> str | None:
    """Why seLinuxOptions break the standard, or None: only container types, never a user or role."""
    if not isinstance(options, Mapping):
        return None
    problems: list[str] = []
    if options.get("type") not in (None, "", *ALLOWED_SELINUX_TYPES):
        problems.append(f"type {options.get('type')!r} (allowed: {', '.join(sorted(ALLOWED_SELINUX_TYPES))})")
    problems += [f"{field} {options[field]!r}" for field in ("user", "role") if options.get(field)]
    return "; ".join(problems) or None


def _bad_profile_type(profile: Any, allowed: frozenset[str]) -> str | None:
    """The type of a seccomp or AppArmor profile that is set to something not allowed, else None."""
    if isinstance(profile, Mapping) and profile.get("type") not in allowed:
        return repr(profile.get("type"))
    return None


def _pod_level_violations(spec: Props, annotations: Mapping[str, str]) -> list[str]:
    """The pod's own settings. A bad pod-level value fails even when every container overrides it, as
    Kubernetes judges it: the pod-level value is what any container added later inherits."""
    found: list[str] = []
    security = _security(spec)
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            found.append(f"spec.{field} is true; host namespaces are not allowed (leave it unset or false)")
    for volume in as_list(spec.get("volumes")):
        if not isinstance(volume, Mapping):
            continue
        for source in sorted(k for k, v in volume.items() if k != "name" and v is not None):
            if source not in RESTRICTED_VOLUME_TYPES:
                found.append(
                    f'volume "{volume.get("name", "?")}" uses {source}; allowed volume types are '
                    f"{', '.join(sorted(RESTRICTED_VOLUME_TYPES))}"
                )
    for sysctl in as_list(security.get("sysctls")):
        name = sysctl.get("name") if isinstance(sysctl, Mapping) else None
        if name not in SAFE_SYSCTLS:
            found.append(f"sysctl {name} is not in the safe set ({', '.join(sorted(SAFE_SYSCTLS))})")
    for key, value in annotations.items():
        allowed = value in ("", "runtime/default") or str(value).startswith("localhost/")
        if key.startswith(APPARMOR_ANNOTATION) and not allowed:
            found.append(f"annotation {key}: {value} is not allowed; use runtime/default or localhost/<profile>")
    if dig(security, "windowsOptions", "hostProcess") is True:
        found.append("spec.securityContext.windowsOptions.hostProcess is true; host processes are not allowed")
    if security.get("runAsNonRoot") is False:
        found.append("spec.securityContext.runAsNonRoot is false; it must be true or unset with every container true")
    if security.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser is 0 (root); use a non-zero UID")
    if not _is_windows(spec) and (bad := _bad_profile_type(security.get("seccompProfile"), ALLOWED_SECCOMP_TYPES)):
        found.append(
            f"spec.securityContext.seccompProfile.type {bad} is not allowed; set RuntimeDefault (or Localhost)"
        )
    if bad := _bad_profile_type(security.get("appArmorProfile"), ALLOWED_APPARMOR_TYPES):
        found.append(f"spec.securityContext.appArmorProfile.type {bad} is not allowed; use RuntimeDefault or Localhost")
    if bad := _bad_selinux(security.get("seLinuxOptions")):
        found.append(f"spec.securityContext.seLinuxOptions sets {bad}, which is not allowed")
    return found


def _forbidden_hosts(container: Props) -> list[str]:
    """Probe and lifecycle handlers aimed at another host: the kubelet would send requests there from the node."""
    handlers: list[tuple[tuple[str, ...], str]] = [((name,), name) for name in PROBES_WITH_HOST]
    handlers += [(("lifecycle", name), f"lifecycle.{name}") for name in LIFECYCLE_HANDLERS]
    return [
        f"{where}.{action}.host {host!r}"
        for path, where in handlers
        for action in ("httpGet", "tcpSocket")
        if (host := dig(container, *path, action, "host")) not in (None, "")
    ]


def _container_violations(label: str, container: Props, spec: Props) -> list[str]:
    """One container's settings; a container may leave runAsNonRoot and seccomp to the pod."""
    found: list[str] = []
    security = _security(container)
    pod_security_context = _security(spec)
    windows = _is_windows(spec)
    if security.get("privileged") is True:
        found.append(f"{label} is privileged; set securityContext.privileged to false")
    if not windows and security.get("allowPrivilegeEscalation") is not False:
        found.append(f"{label} must set securityContext.allowPrivilegeEscalation to false")
    run_as_non_root = security.get("runAsNonRoot")
    if run_as_non_root is False:
        found.append(f"{label} sets runAsNonRoot: false; it must run with runAsNonRoot: true")
    elif run_as_non_root is None and pod_security_context.get("runAsNonRoot") is None:
        found.append(f"{label} must run with runAsNonRoot: true (on the container or the pod)")
    if security.get("runAsUser") == 0:
        found.append(f"{label} sets runAsUser 0 (root); use a non-zero UID")
    if not windows:
        seccomp = security.get("seccompProfile")
        if seccomp is not None and (bad := _bad_profile_type(seccomp, ALLOWED_SECCOMP_TYPES)):
            found.append(f"{label} has seccompProfile.type {bad}; set RuntimeDefault (or Localhost)")
        elif seccomp is None and pod_security_context.get("seccompProfile") is None:
            found.append(
                f"{label} has no seccompProfile and neither has the pod; set type RuntimeDefault (or Localhost) "
                "on the container or pod"
            )
        drop = [str(c) for c in as_list(dig(security, "capabilities", "drop"))]
        if "ALL" not in drop:
            found.append(f'{label} must drop all capabilities (securityContext.capabilities.drop: ["ALL"])')
        for cap in as_list(dig(security, "capabilities", "add")):
            if cap not in ALLOWED_ADDED_CAPABILITIES:
                found.append(f"{label} adds capability {cap}; only NET_BIND_SERVICE may be added")
    for port in as_list(container.get("ports")):
        if isinstance(port, Mapping) and port.get("hostPort") not in (None, 0):
            found.append(f"{label} uses hostPort {port.get('hostPort')}; host ports are not allowed")
    if security.get("procMount") not in (None, "Default"):
        found.append(f"{label} sets procMount {security.get('procMount')}; only Default is allowed")
    if dig(security, "windowsOptions", "hostProcess") is True:
        found.append(f"{label} sets windowsOptions.hostProcess; host processes are not allowed")
    if bad := _bad_profile_type(security.get("appArmorProfile"), ALLOWED_APPARMOR_TYPES):
        found.append(f"{label} has appArmorProfile.type {bad}; use RuntimeDefault or Localhost")
    if bad := _bad_selinux(security.get("seLinuxOptions")):
        found.append(f"{label} sets seLinuxOptions {bad}, which is not allowed")
    found += [
        f"{label} aims {target}; probes and lifecycle handlers may only reach the pod itself (leave host unset)"
        for target in _forbidden_hosts(container)
    ]
    return found


def pod_security(resource_type: str, props: Props) -> list[str]:
    """The restricted Pod Security Standard, checked on the pod template of any workload."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    details = _pod_level_violations(spec, pod_metadata(resource_type, props, "annotations"))
    for label, container in containers(spec):
        details += _container_violations(label, container, spec)
    return [_msg(POD_SECURITY, resource_type, props, detail) for detail in details]


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
