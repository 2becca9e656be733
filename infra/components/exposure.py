"""The way in: an Ingress, or a Gateway API HTTPRoute, that routes a URL to a service's pods."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import AppIdentity, object_meta
from infra.components.service import AppService
from infra.components.web_deployment import PORT_NAME
from infra.settings import GatewayRef, IngressTls

GATEWAY_API = "gateway.networking.k8s.io/v1"
CLUSTER_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"


@dataclass(frozen=True)
class Address:
    """What a route matches of a URL: its host name (None for an IP literal, which routes never name) and its
    path prefix."""

    host: str | None
    path: str


def address(url: str) -> Address:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        name: str | None = None
    except ValueError:
        name = host
    return Address(host=name, path=parts.path.rstrip("/") or "/")


@dataclass(frozen=True)
class AppIngressArgs:
    target: AppService
    identity: AppIdentity
    url: str
    class_name: str | None = None
    tls: IngressTls | None = None


def ingress_spec(
    service: pulumi.Input[str], where: Address, class_name: str | None, tls: IngressTls | None
) -> k8s.networking.v1.IngressSpecArgs:
    backend = k8s.networking.v1.IngressBackendArgs(
        service=k8s.networking.v1.IngressServiceBackendArgs(
            name=service, port=k8s.networking.v1.ServiceBackendPortArgs(name=PORT_NAME)
        )
    )
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name=class_name,
        rules=[
            k8s.networking.v1.IngressRuleArgs(
                host=where.host,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                    paths=[k8s.networking.v1.HTTPIngressPathArgs(path=where.path, path_type="Prefix", backend=backend)]
                ),
            )
        ],
        tls=[k8s.networking.v1.IngressTLSArgs(hosts=[where.host] if where.host else None, secret_name=tls.secret_name)]
        if tls is not None
        else None,
    )


class AppIngress(pulumi.ComponentResource):
    """An Ingress `<name>` that routes the URL's host and path prefix to the target Service's `http` port.

    With `tls`, the Ingress serves the host with the certificate in `tls.secretName`; with `tls.clusterIssuer`
    it carries cert-manager's annotation, so cert-manager issues that certificate and keeps it renewed.
    """

    def __init__(self, name: str, args: AppIngressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:network:AppIngress", name, None, opts)
        annotations = {}
        if args.tls is not None and args.tls.cluster_issuer is not None:
            annotations[CLUSTER_ISSUER_ANNOTATION] = args.tls.cluster_issuer
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=object_meta(args.identity, name, args.target.namespace, annotations=annotations or None),
            spec=ingress_spec(args.target.name, address(args.url), args.class_name, args.tls),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


@dataclass(frozen=True)
class WeightedBackend:
    """A Service and its share of the requests, relative to the other backends' weights."""

    service: AppService
    weight: int


@dataclass(frozen=True)
class AppRouteArgs:
    backends: Sequence[WeightedBackend]
    identity: AppIdentity
    url: str
    gateway: GatewayRef


def route_spec(
    backends: Sequence[tuple[pulumi.Input[str], int, int]], where: Address, gateway: GatewayRef
) -> dict[str, object]:
    """An HTTPRoute spec; `backends` are (Service name, Service port, weight)."""
    parent: dict[str, object] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway.name}
    if gateway.namespace is not None:
        parent["namespace"] = gateway.namespace
    if gateway.listener is not None:
        parent["sectionName"] = gateway.listener
    spec: dict[str, object] = {
        "parentRefs": [parent],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": where.path}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}
                    for service, port, weight in backends
                ],
            }
        ],
    }
    if where.host is not None:
        spec["hostnames"] = [where.host]
    return spec


class AppRoute(pulumi.ComponentResource):
    """An HTTPRoute `<name>` (Gateway API v1) attached to a named Gateway, sending the URL's host and path prefix
    to one or more Services by weight: a canary is a second backend with its share of the requests.

    Invariants: the weights are whole numbers from 0 to 100 summing to 100, so each is the percentage of
    requests its Service receives; TLS belongs to the Gateway's listener the route attaches to.
    """

    def __init__(self, name: str, args: AppRouteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        weights = [backend.weight for backend in args.backends]
        if not args.backends or any(w < 0 or w > 100 for w in weights) or sum(weights) != 100:
            raise ValueError(f"AppRoute {name!r}: backend weights must be 0-100 and sum to 100, got {weights}")
        super().__init__("goapp:network:AppRoute", name, None, opts)
        first = args.backends[0].service
        names = pulumi.Output.all(*[backend.service.name for backend in args.backends])
        spec = names.apply(
            lambda resolved: route_spec(
                [(svc, b.service.port, b.weight) for svc, b in zip(resolved, args.backends, strict=True)],
                address(args.url),
                args.gateway,
            )
        )
        k8s.apiextensions.CustomResource(
            f"{name}-httproute",
            api_version=GATEWAY_API,
            kind="HTTPRoute",
            metadata=object_meta(args.identity, name, first.namespace),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
