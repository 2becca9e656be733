"""RestrictedNamespace: the namespace a service runs in, under the restricted Pod Security Standard."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import AppIdentity

PSS_LEVEL = "restricted"


@dataclass(frozen=True)
class RestrictedNamespaceArgs:
    identity: AppIdentity
    name: str | None = None
    """The namespace's Kubernetes name; the component's name when not set."""
    protect: bool = False
    """Refuse to delete or replace it: deleting a namespace deletes every volume claim in it."""


def namespace_labels(identity: AppIdentity) -> dict[str, str]:
    """Pod Security Admission enforces the restricted standard on everything in the namespace, and audits and
    warns at the same level, so a violation is refused, logged and shown to the client that tried."""
    return {
        **identity.labels,
        "pod-security.kubernetes.io/enforce": PSS_LEVEL,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": PSS_LEVEL,
        "pod-security.kubernetes.io/warn": PSS_LEVEL,
    }


class RestrictedNamespace(pulumi.ComponentResource):
    """A Namespace labelled for the restricted Pod Security Standard.

    Creates: one Namespace. Invariants: the API server refuses any pod in it that runs as root, escalates
    privileges, keeps capabilities, uses host namespaces or paths, or runs without a seccomp profile — whatever
    created the pod. Everything else a service needs is created in it, so depending on `name` orders creation
    after it and deletion before it.
    """

    name: pulumi.Output[str]

    def __init__(self, name: str, args: RestrictedNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:namespace:RestrictedNamespace", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.name or name, labels=namespace_labels(args.identity)),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.name = namespace.metadata.apply(lambda m: str(m.name))
        self.register_outputs({"name": self.name})
