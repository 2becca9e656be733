"""AppServiceMonitor: tells a Prometheus Operator to scrape a service's pods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import object_meta
from infra.components.service import AppService
from infra.components.web_deployment import METRICS_PATH, PORT_NAME, WebDeployment

MONITORING_API = "monitoring.coreos.com/v1"


@dataclass(frozen=True)
class AppServiceMonitorArgs:
    target: WebDeployment
    service: AppService
    interval: str = "30s"
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels the Prometheus Operator's serviceMonitorSelector looks for (e.g. `release: prometheus`)."""


def service_monitor_spec(selector: Mapping[str, str], interval: str) -> dict[str, object]:
    return {
        "selector": {"matchLabels": dict(selector)},
        "endpoints": [{"port": PORT_NAME, "path": METRICS_PATH, "interval": interval, "scheme": "http"}],
    }


class AppServiceMonitor(pulumi.ComponentResource):
    """A ServiceMonitor `<name>` (monitoring.coreos.com/v1): scrape `/metrics` on the `http` port of the
    endpoints of the target's Service, every `interval`. The cluster must have the Prometheus Operator's CRDs;
    without them the API server refuses the object and `pulumi up` stops naming the missing kind."""

    def __init__(self, name: str, args: AppServiceMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:monitoring:AppServiceMonitor", name, None, opts)
        identity = args.target.identity
        metadata = object_meta(identity, name, args.service.namespace)
        metadata.labels = {**identity.labels, **args.labels}
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor",
            api_version=MONITORING_API,
            kind="ServiceMonitor",
            metadata=metadata,
            spec=args.service.name.apply(lambda _: service_monitor_spec(identity.selector, args.interval)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
