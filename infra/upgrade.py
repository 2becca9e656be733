"""Stacks made before the components split keep every object: aliases from the old resource identities.

Up to commit 723fb86 the program registered one `goapp:workload:Workload` component named after the service,
with every Kubernetes object as its direct child. Each concept is now its own component, so every object has a
new parent and therefore a new URN; without aliases the engine would delete and recreate them all — the
PersistentVolumeClaim with every note on it. `legacy_children` aliases each Kubernetes object of a component to
the URN it had under the old Workload (same type, same name), and `legacy_workload` lets the WebDeployment take
over the old component's own identity, so an upgrade shows updates and creates, never a delete or a replace.
"""

from __future__ import annotations

import pulumi

LEGACY_WORKLOAD_TYPE = "goapp:workload:Workload"


def _legacy_parent(service: str) -> pulumi.Output[str]:
    return pulumi.create_urn(service, LEGACY_WORKLOAD_TYPE)


def legacy_children(service: str) -> pulumi.ResourceTransformation:
    """A transformation for a component: its Kubernetes children also answer to their old URNs."""
    parent = _legacy_parent(service)

    def alias(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("kubernetes:"):
            return None
        extra = pulumi.ResourceOptions(aliases=[pulumi.Alias(parent=parent)])
        return pulumi.ResourceTransformationResult(
            props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, extra)
        )

    return alias


def legacy_workload() -> pulumi.Alias:
    """For the WebDeployment: it was the Workload component (same name, at the stack's root)."""
    return pulumi.Alias(type_=LEGACY_WORKLOAD_TYPE)
