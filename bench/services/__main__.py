"""BENCH_SERVICES prod-shaped services, each composed from goapp's components as a platform team would (namespace,
configuration, volume, deployment, Service, network policy, autoscaler, disruption budget), in render mode."""

import os

import pulumi
import pulumi_kubernetes as k8s

from infra.components import (
    AUTOSCALED,
    AppConfig,
    AppConfigArgs,
    AppIdentity,
    AppNetworkPolicy,
    AppNetworkPolicyArgs,
    AppService,
    AppServiceArgs,
    Autoscaler,
    AutoscalerArgs,
    DataVolume,
    DataVolumeArgs,
    DisruptionBudget,
    DisruptionBudgetArgs,
    RestrictedNamespace,
    RestrictedNamespaceArgs,
    WebDeployment,
    WebDeploymentArgs,
)
from infra.settings import Autoscaling

render_dir = os.environ.get("BENCH_RENDER_DIR", "")
count = os.environ.get("BENCH_SERVICES", "")
if not render_dir or not count.isdigit() or int(count) < 1:
    raise pulumi.RunError("BENCH_RENDER_DIR and BENCH_SERVICES (an integer ≥ 1) must be set")

# Same provider arguments as goapp's program in render mode (infra/program.py).
provider = k8s.Provider(
    "kubernetes", render_yaml_to_directory=render_dir, enable_config_map_mutable=True, enable_secret_mutable=True
)
opts = pulumi.ResourceOptions(providers=[provider])
image = "registry.example.com/bench@sha256:" + "0" * 64
for index in range(int(count)):
    name = f"service{index}"
    identity = AppIdentity(name=name, instance=f"bench-{name}")
    namespace = RestrictedNamespace(name, RestrictedNamespaceArgs(identity=identity), opts=opts)
    config = AppConfig(
        name, AppConfigArgs(namespace=namespace.name, identity=identity, env={"APP_MESSAGE": name}), opts=opts
    )
    data = DataVolume(name, DataVolumeArgs(namespace=namespace.name, identity=identity), opts=opts)
    web = WebDeployment(
        name,
        WebDeploymentArgs(
            namespace=namespace.name, identity=identity, image=image, config=config, data=data, replicas=AUTOSCALED
        ),
        opts=opts,
    )
    AppService(name, AppServiceArgs(target=web), opts=opts)
    AppNetworkPolicy(name, AppNetworkPolicyArgs(target=web), opts=opts)
    Autoscaler(name, AutoscalerArgs(target=web, autoscaling=Autoscaling(min_replicas=3, max_replicas=10)), opts=opts)
    DisruptionBudget(name, DisruptionBudgetArgs(target=web), opts=opts)
