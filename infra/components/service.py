"""AppService: the stable in-cluster address in front of a WebDeployment's pods."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import object_meta
from infra.components.web_deployment import PORT_NAME, WebDeployment
from infra.settings import ServiceSettings


@dataclass(frozen=True)
class AppServiceArgs:
    target: WebDeployment
    service: ServiceSettings = field(default_factory=ServiceSettings)


def service_spec(selector: pulumi.Input[dict[str, str]], service: ServiceSettings) -> k8s.core.v1.ServiceSpecArgs:
    return k8s.core.v1.ServiceSpecArgs(
        type=service.type,
        selector=selector,
        ports=[
            k8s.core.v1.ServicePortArgs(
                name=PORT_NAME,
                port=service.port,
                # By name: the container port can change without touching the Service.
                target_port=PORT_NAME,
                protocol="TCP",
                node_port=service.node_port,
            )
        ],
    )


def dns_name(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


class AppService(pulumi.ComponentResource):
    """A Service `<name>` that selects exactly the target's pods (its immutable selector labels) and sends
    traffic to their named `http` port. Exposes `name` and `dns_name`, the in-cluster DNS name."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    port: int
    """The Service's port, which routes and other clients address."""

    def __init__(self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:network:AppService", name, None, opts)
        target = args.target
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=object_meta(target.identity, name, target.namespace),
            spec=service_spec(target.selector, args.service),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = service.metadata.apply(lambda m: str(m.name))
        self.namespace = service.metadata.apply(lambda m: str(m.namespace))
        self.port = args.service.port
        self.dns_name = service.metadata.apply(lambda m: dns_name(str(m.name), str(m.namespace)))
        self.register_outputs({"name": self.name, "dnsName": self.dns_name})
