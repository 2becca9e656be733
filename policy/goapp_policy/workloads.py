"""Where each Kubernetes workload keeps its pod template, read the same way by every policy.

Properties arrive as the Kubernetes provider's inputs (camelCase, the same shape as a manifest), so the
same functions serve `pulumi preview --policy-pack` and the rendered YAML under dist/<stack>/.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Props = Mapping[str, Any]

_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:PodTemplate": ("template", "spec"),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

RUN_TO_COMPLETION = frozenset({"kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"})
"""Pods that exit when done: probes make no sense for them."""

WORKLOAD_TYPES = frozenset(_POD_SPEC_PATHS)

CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


def type_token(api_version: str, kind: str) -> str:
    """The Pulumi type token of a manifest, e.g. ("apps/v1", "Deployment") -> "kubernetes:apps/v1:Deployment"."""
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


def dig(props: Props, *path: str) -> Any:
    """The value at path, or None where any step is missing or not a mapping."""
    node: Any = props
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def pod_spec(resource_type: str, props: Props) -> Props | None:
    """The pod spec of a workload, or None for a resource that runs no pods."""
    path = _POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return None
    spec = dig(props, *path)
    return spec if isinstance(spec, Mapping) else {}


def pod_metadata(resource_type: str, props: Props, field: str) -> Mapping[str, str]:
    """The pod template's labels or annotations: what a PodDisruptionBudget selects on, or AppArmor reads."""
    path = _POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return {}
    value = dig(props, *path[:-1], "metadata", field)
    return value if isinstance(value, Mapping) else {}


def pod_labels(resource_type: str, props: Props) -> Mapping[str, str]:
    return pod_metadata(resource_type, props, "labels")


def containers(spec: Props) -> Iterator[tuple[str, Props]]:
    """Every container of a pod spec with a label for messages, e.g. ('initContainer "migrate"', {...})."""
    for field in CONTAINER_FIELDS:
        for item in as_list(spec.get(field)):
            if isinstance(item, Mapping):
                yield f'{field[:-1]} "{item.get("name", "?")}"', item


def as_list(value: Any) -> Sequence[Any]:
    """A YAML/JSON list, or empty for anything else (a string is a Sequence too, and is never a list here)."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def describe(resource_type: str, props: Props) -> str:
    """A short human name, e.g. 'Deployment goapp-prod/goapp'."""
    kind = resource_type.rsplit(":", 1)[-1]
    name = dig(props, "metadata", "name") or "(unnamed)"
    namespace = dig(props, "metadata", "namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
