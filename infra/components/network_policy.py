"""AppNetworkPolicy: the firewall around a WebDeployment's pods."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import object_meta
from infra.components.web_deployment import PORT_NAME, WebDeployment
from infra.settings import DnsPeers, IngressPeers, NetworkPolicySettings

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace (1.22+), so a namespace can be selected by its name."""


@dataclass(frozen=True)
class AppNetworkPolicyArgs:
    target: WebDeployment
    policy: NetworkPolicySettings = field(default_factory=NetworkPolicySettings)


def _namespace(name: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: name})


def ingress_rules(peers: IngressPeers) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    """The app port from the listed namespaces and address blocks; no rule at all admits nothing."""
    sources = [k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=_namespace(ns)) for ns in peers.namespaces]
    sources += [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
        for cidr in peers.cidrs
    ]
    if not sources:
        return []
    return [
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=sources,
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=PORT_NAME, protocol="TCP")],
        )
    ]


def dns_egress_rule(dns: DnsPeers) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """DNS, and only to the cluster DNS: a pod that may send port 53 anywhere can tunnel through it."""
    if dns.selects_pods:
        targets = [
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=_namespace(dns.effective_namespace),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dns.effective_pod_labels),
            )
        ]
    else:
        targets = [
            k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
            for cidr in dns.cidrs
        ]
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=targets,
        ports=[
            k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="UDP"),
            k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="TCP"),
        ],
    )


def network_policy_spec(
    selector: pulumi.Input[dict[str, str]], policy: NetworkPolicySettings
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
        policy_types=["Ingress", "Egress"],
        ingress=ingress_rules(policy.allow_from),
        egress=[dns_egress_rule(policy.dns)],
    )


class AppNetworkPolicy(pulumi.ComponentResource):
    """A NetworkPolicy `<name>` over the target's pods, for both directions.

    Invariants: connections in are admitted only on the app port and only from `policy.allow_from` (nothing
    when it is empty); connections out only to the cluster DNS on port 53. A cluster whose network plugin
    enforces NetworkPolicy then lets nothing else reach the pods or leave them.
    """

    def __init__(self, name: str, args: AppNetworkPolicyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:network:AppNetworkPolicy", name, None, opts)
        target = args.target
        k8s.networking.v1.NetworkPolicy(
            f"{name}-networkpolicy",
            metadata=object_meta(target.identity, name, target.namespace),
            spec=network_policy_spec(target.selector, args.policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
