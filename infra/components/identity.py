"""Who a set of Kubernetes objects belongs to, said with Kubernetes' recommended labels.

Every component labels its objects from one `AppIdentity`, and every selector is its `selector`: the two
labels that never change for the life of a deployment (a Deployment's selector is immutable, so a label that
changes with each release — the version — must never be in it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

MANAGED_BY = "pulumi"


@dataclass(frozen=True)
class AppIdentity:
    """One deployment of one service.

    `name` is the service (`goapp`, `billing`), `instance` this deployment of it (`goapp-prod`): together they
    select its pods, so two services, or two deployments of one service, never select each other's pods.
    """

    name: str
    instance: str
    version: str = "dev"
    part_of: str | None = None
    """The larger application the service belongs to; defaults to the service itself."""
    component: str = "server"

    @property
    def selector(self) -> dict[str, str]:
        """The immutable subset of the labels: a Deployment selector can never change without a replace."""
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/instance": self.instance}

    @property
    def labels(self) -> dict[str, str]:
        return {
            **self.selector,
            "app.kubernetes.io/version": label_value(self.version),
            "app.kubernetes.io/component": self.component,
            "app.kubernetes.io/part-of": self.part_of or self.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }


def label_value(text: str) -> str:
    """Label values are at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in text)[:63].strip("_.-")
    return cleaned or "unknown"


def object_meta(
    identity: AppIdentity, name: str, namespace: pulumi.Input[str], **extra: object
) -> k8s.meta.v1.ObjectMetaArgs:
    """Metadata of a namespaced object: its fixed name, its namespace and the identity's labels."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=identity.labels,
        **extra,  # type: ignore[arg-type]
    )
