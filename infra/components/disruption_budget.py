"""DisruptionBudget: how many of a WebDeployment's pods a voluntary disruption (a node drain) may take at once."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import object_meta
from infra.components.web_deployment import WebDeployment


@dataclass(frozen=True)
class DisruptionBudgetArgs:
    target: WebDeployment
    max_unavailable: int = 1


def disruption_budget_spec(
    selector: pulumi.Input[dict[str, str]], max_unavailable: int
) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=max_unavailable,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
        # A pod that never became ready protects nothing; let drains evict it.
        unhealthy_pod_eviction_policy="AlwaysAllow",
    )


class DisruptionBudget(pulumi.ComponentResource):
    """A PodDisruptionBudget `<name>` over the target's pods: drains evict at most `max_unavailable` at a time.

    Compose it only where more than one replica can run: a budget over a single pod blocks every node drain.
    """

    def __init__(self, name: str, args: DisruptionBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.max_unavailable < 1:
            raise ValueError(f"DisruptionBudget {name!r}: max_unavailable must be at least 1 or drains never finish")
        super().__init__("goapp:availability:DisruptionBudget", name, None, opts)
        target = args.target
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruptionbudget",
            metadata=object_meta(target.identity, name, target.namespace),
            spec=disruption_budget_spec(target.selector, args.max_unavailable),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
