"""The program: stack config → settings → components → stack outputs.

`compose` is the whole shape of one stack: which components it gets and how they are wired. Everything else
here turns the stack's settings into the components' narrow arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra import upgrade
from infra.components.app_config import AppConfig, AppConfigArgs
from infra.components.autoscaler import AUTOSCALED, Autoscaler, AutoscalerArgs, ReplicaRule, fixed_replicas
from infra.components.data_volume import DataVolume, DataVolumeArgs
from infra.components.disruption_budget import DisruptionBudget, DisruptionBudgetArgs
from infra.components.exposure import AppIngress, AppIngressArgs, AppRoute, AppRouteArgs, WeightedBackend
from infra.components.identity import AppIdentity
from infra.components.monitoring import AppServiceMonitor, AppServiceMonitorArgs
from infra.components.namespace import RestrictedNamespace, RestrictedNamespaceArgs
from infra.components.network_policy import AppNetworkPolicy, AppNetworkPolicyArgs
from infra.components.service import AppService, AppServiceArgs
from infra.components.web_deployment import WebDeployment, WebDeploymentArgs
from infra.settings import ConfigError, Run, ServiceSettings, Settings, Spread, StackConfig, load_settings
from infra.stack_config import read_stack_config

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAPP_CONTEXT = REPO_ROOT / "goapp"
SERVICE = "goapp"
"""The service's name: every component's, and so every Kubernetes object's (`goapp`, `goapp-env`, …)."""
CANARY = f"{SERVICE}-canary"


def load() -> Settings:
    """Validate the stack before anything is registered; a bad config registers nothing."""
    try:
        return load_settings(
            read_stack_config(),
            project=pulumi.get_project(),
            stack=pulumi.get_stack(),
            environ=os.environ,
            run=Run(dry_run=pulumi.runtime.is_dry_run()),
        )
    except ConfigError as error:
        # RunError is reported without a Python traceback: the message is the whole story.
        raise pulumi.RunError(str(error)) from None


def kubernetes_provider(settings: Settings) -> k8s.Provider:
    """The provider every component uses.

    ConfigMaps and Secrets are updated in place instead of replaced (the provider's default): a replacement of
    an object with a fixed name deletes it before creating it again, and a pod starting in that gap fails. Pods
    still roll on a change, through the configuration's revision annotation.
    """
    target = settings.config.kubernetes
    if settings.render_dir is not None:
        return k8s.Provider(
            "kubernetes",
            render_yaml_to_directory=str(settings.render_dir),
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
        )
    return k8s.Provider(
        "kubernetes",
        kubeconfig=os.path.expanduser(target.kubeconfig) if target.kubeconfig else None,
        context=target.context,
        enable_server_side_apply=True,
        enable_config_map_mutable=True,
        enable_secret_mutable=True,
    )


def image_reference(settings: Settings) -> pulumi.Input[str]:
    """A prebuilt digest when one is given (render mode, promotion), else a fresh build."""
    image = settings.config.image
    if settings.image_digest is not None:
        return f"{image.repository}@{settings.image_digest}"
    # Imported here, not at the top: pulumi_docker (with the pkg_resources it loads) costs about a third of a
    # second, which every render-mode and promotion preview would pay for a build it never runs.
    from infra.components.image import ServiceImage, ServiceImageArgs

    password = None
    if image.registry is not None:
        password = pulumi.Output.secret(image.registry.password.get_secret_value())
    return ServiceImage(
        SERVICE,
        ServiceImageArgs(image=image, build=settings.build, context=GOAPP_CONTEXT, registry_password=password),
    ).ref


@dataclass(frozen=True)
class ServiceOutputs:
    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    dns_name: pulumi.Output[str]


@dataclass(frozen=True)
class Release:
    """What the stable deployment runs: the stack's image and env, or, once a canary is promoted, the canary's."""

    image: pulumi.Input[str]
    env: dict[str, str]


def stable_release(config: StackConfig, image: pulumi.Input[str]) -> Release:
    canary = config.canary
    if canary is None or not canary.promote:
        return Release(image=image, env=dict(config.env))
    return Release(image=canary_image(config, image), env={**config.env, **canary.env})


def canary_image(config: StackConfig, image: pulumi.Input[str]) -> pulumi.Input[str]:
    digest = config.canary.image if config.canary is not None else None
    return f"{config.image.repository}@{digest}" if digest else image


@dataclass(frozen=True)
class Track:
    """One deployment of the service and what sits in front of it: the stable one, or a canary beside it."""

    name: str
    identity: AppIdentity
    release: Release
    replicas: ReplicaRule
    service: ServiceSettings
    spread: Spread | None = None


@dataclass(frozen=True)
class Shared:
    """What every track of one stack shares: its namespace, its data, its secrets, the stack's settings."""

    config: StackConfig
    namespace: pulumi.Output[str]
    data: DataVolume
    secrets: dict[str, str]
    rollout_key: pulumi.Input[str] | None


def deploy_track(
    track: Track, shared: Shared, opts: pulumi.ResourceOptions, web_opts: pulumi.ResourceOptions
) -> tuple[WebDeployment, AppService]:
    """A track's configuration, deployment, Service and network policy."""
    config = shared.config
    app_config = AppConfig(
        track.name,
        AppConfigArgs(
            namespace=shared.namespace,
            identity=track.identity,
            env=track.release.env,
            secret_env=shared.secrets,
            rollout_key=shared.rollout_key,
            live=config.live_config,
        ),
        opts=opts,
    )
    web = WebDeployment(
        track.name,
        WebDeploymentArgs(
            namespace=shared.namespace,
            identity=track.identity,
            image=track.release.image,
            config=app_config,
            data=shared.data,
            replicas=track.replicas,
            port=config.port,
            resources=config.resources,
            shutdown=config.shutdown,
            spread=track.spread,
        ),
        opts=web_opts,
    )
    service = AppService(track.name, AppServiceArgs(target=web, service=track.service), opts=opts)
    AppNetworkPolicy(track.name, AppNetworkPolicyArgs(target=web, policy=config.network_policy), opts=opts)
    return web, service


def compose(settings: Settings, image: pulumi.Input[str], provider: k8s.Provider) -> ServiceOutputs:
    """Every component of one stack, wired by their outputs."""
    config = settings.config
    identity = AppIdentity(name=SERVICE, instance=settings.instance, version=settings.build.version)
    # Kubernetes objects keep the identities they had under the single Workload of earlier versions.
    opts = pulumi.ResourceOptions(providers=[provider], transformations=[upgrade.legacy_children(SERVICE)])

    namespace = RestrictedNamespace(
        SERVICE,
        # Deleting a namespace deletes its volume claims: protecting the data protects its namespace too.
        RestrictedNamespaceArgs(identity=identity, name=config.namespace, protect=config.storage.protect),
        opts=opts,
    )
    data = DataVolume(
        SERVICE, DataVolumeArgs(namespace=namespace.name, identity=identity, storage=config.storage), opts=opts
    )
    shared = Shared(
        config=config,
        namespace=namespace.name,
        data=data,
        secrets={name: value.get_secret_value() for name, value in config.secret_env.items()},
        rollout_key=pulumi.Output.secret(config.rollout_key.get_secret_value()) if config.rollout_key else None,
    )
    stable = Track(
        name=SERVICE,
        identity=identity,
        release=stable_release(config, image),
        replicas=AUTOSCALED if config.autoscaling else fixed_replicas(config.replicas),
        service=config.service,
        spread=config.spread if config.max_replicas > 1 else None,
    )
    # The stable WebDeployment takes over the old Workload component's identity, and with it its children's.
    web, service = deploy_track(
        stable, shared, opts, pulumi.ResourceOptions(providers=[provider], aliases=[upgrade.legacy_workload()])
    )
    if config.autoscaling is not None:
        Autoscaler(SERVICE, AutoscalerArgs(target=web, autoscaling=config.autoscaling), opts=opts)
    if config.max_replicas > 1:
        DisruptionBudget(SERVICE, DisruptionBudgetArgs(target=web), opts=opts)
    if config.monitoring.service_monitor:
        monitoring = config.monitoring
        AppServiceMonitor(
            SERVICE,
            AppServiceMonitorArgs(target=web, service=service, interval=monitoring.interval, labels=monitoring.labels),
            opts=opts,
        )

    backends = [WeightedBackend(service, 100)]
    if config.canary is not None:
        canary = Track(
            name=CANARY,
            # Its own instance label: the stable Service's selector must not pick the canary's pods.
            identity=replace(identity, instance=f"{settings.instance}-canary"),
            release=Release(image=canary_image(config, image), env={**config.env, **config.canary.env}),
            replicas=fixed_replicas(1),
            service=ServiceSettings(type="ClusterIP", port=config.service.port),
        )
        _, canary_service = deploy_track(canary, shared, opts, opts)
        weight = config.canary.weight
        backends = [WeightedBackend(service, 100 - weight), WeightedBackend(canary_service, weight)]

    exposure = config.exposure
    if exposure is not None and config.url is not None:
        if exposure.kind == "ingress":
            AppIngress(
                SERVICE,
                AppIngressArgs(
                    target=service, identity=identity, url=config.url, class_name=exposure.class_name, tls=exposure.tls
                ),
                opts=opts,
            )
        elif exposure.gateway is not None:
            AppRoute(
                SERVICE,
                AppRouteArgs(backends=backends, identity=identity, url=config.url, gateway=exposure.gateway),
                opts=opts,
            )
    return ServiceOutputs(namespace=namespace.name, service_name=service.name, dns_name=service.dns_name)


def deploy(settings: Settings) -> dict[str, pulumi.Input[str]]:
    """Register every resource of one stack; return the stack outputs."""
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    provider = kubernetes_provider(settings)
    image = image_reference(settings)
    service = compose(settings, image, provider)
    outputs: dict[str, pulumi.Input[str]] = {
        "namespace": service.namespace,
        "serviceName": service.service_name,
        "dnsName": service.dns_name,
        "imageRef": image,
    }
    if settings.config.url is not None:
        outputs["url"] = settings.config.url
    return outputs


def main() -> None:
    for name, value in deploy(load()).items():
        pulumi.export(name, value)
