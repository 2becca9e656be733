"""Autoscaler: a HorizontalPodAutoscaler, and the one rule about who owns a Deployment's replica count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import object_meta
from infra.settings import Autoscaling, ScalingRule

if TYPE_CHECKING:
    from infra.components.web_deployment import WebDeployment


@dataclass(frozen=True)
class ReplicaRule:
    """How a Deployment states its replica count: a fixed number it keeps, or none, left to an autoscaler."""

    count: int | None
    ignore_changes: tuple[str, ...] = ()

    @property
    def autoscaled(self) -> bool:
        return self.count is None


def fixed_replicas(count: int) -> ReplicaRule:
    """The Deployment declares `count` and every `pulumi up` restores it."""
    if count < 1:
        raise ValueError(f"replicas must be at least 1, got {count}")
    return ReplicaRule(count)


AUTOSCALED = ReplicaRule(None, ("spec.replicas",))
"""The Deployment leaves `replicas` out and the engine ignores the live value, so applying the program never
fights the HPA (which writes the count through the scale subresource) nor resets a scaled-out service."""


@dataclass(frozen=True)
class AutoscalerArgs:
    target: WebDeployment
    autoscaling: Autoscaling


def scaling_rules(rule: ScalingRule) -> k8s.autoscaling.v2.HPAScalingRulesArgs:
    """`Max`: each minute the larger of the two limits applies, so a small deployment can still add whole pods."""
    return k8s.autoscaling.v2.HPAScalingRulesArgs(
        stabilization_window_seconds=rule.stabilization_seconds,
        select_policy="Max",
        policies=[
            k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Pods", value=rule.pods_per_minute, period_seconds=60),
            k8s.autoscaling.v2.HPAScalingPolicyArgs(type="Percent", value=rule.percent_per_minute, period_seconds=60),
        ],
    )


def autoscaler_spec(
    deployment: pulumi.Input[str], scaling: Autoscaling
) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs:
    return k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
        behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
            scale_up=scaling_rules(scaling.scale_up), scale_down=scaling_rules(scaling.scale_down)
        ),
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


class Autoscaler(pulumi.ComponentResource):
    """A HorizontalPodAutoscaler (autoscaling/v2, CPU utilisation of the requests) named like the component.

    Invariant: it owns its target's replica count alone. The target must have been declared with
    `AUTOSCALED`; a Deployment that states a fixed count is refused here, before anything is registered,
    because the two would overwrite each other on every `pulumi up`.
    """

    name: pulumi.Output[str]

    def __init__(self, name: str, args: AutoscalerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.target.replicas.autoscaled:
            raise ValueError(
                f"Autoscaler {name!r}: its target declares {args.target.replicas.count} replicas; "
                "declare the WebDeployment with replicas=AUTOSCALED so the HPA alone owns the count"
            )
        super().__init__("goapp:scaling:Autoscaler", name, None, opts)
        hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=object_meta(args.target.identity, name, args.target.namespace),
            spec=autoscaler_spec(args.target.name, args.autoscaling),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = hpa.metadata.apply(lambda m: str(m.name))
        self.register_outputs({"name": self.name})
