"""The program: stack config → settings → components → stack outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra.components.workload import Workload, WorkloadArgs
from infra.settings import ConfigError, Settings, load_settings
from infra.stack_config import read_stack_config

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAPP_CONTEXT = REPO_ROOT / "goapp"


def load() -> Settings:
    """Validate the stack before anything is registered; a bad config registers nothing."""
    try:
        return load_settings(
            read_stack_config(),
            project=pulumi.get_project(),
            stack=pulumi.get_stack(),
            environ=os.environ,
        )
    except ConfigError as error:
        # RunError is reported without a Python traceback: the message is the whole story.
        raise pulumi.RunError(str(error)) from None


def kubernetes_provider(settings: Settings) -> k8s.Provider:
    target = settings.config.kubernetes
    if settings.render_dir is not None:
        return k8s.Provider("kubernetes", render_yaml_to_directory=str(settings.render_dir))
    return k8s.Provider(
        "kubernetes",
        kubeconfig=os.path.expanduser(target.kubeconfig) if target.kubeconfig else None,
        context=target.context,
        enable_server_side_apply=True,
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
        "goapp",
        ServiceImageArgs(image=image, build=settings.build, context=GOAPP_CONTEXT, registry_password=password),
    ).ref


def deploy(settings: Settings) -> dict[str, pulumi.Input[str]]:
    """Register every resource of one stack; return the stack outputs."""
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    provider = kubernetes_provider(settings)
    image = image_reference(settings)
    workload = Workload(
        "goapp",
        WorkloadArgs(settings=settings, image=image),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    outputs: dict[str, pulumi.Input[str]] = {
        "namespace": workload.namespace,
        "serviceName": workload.service_name,
        "dnsName": workload.dns_name,
        "imageRef": image,
    }
    if settings.config.url is not None:
        outputs["url"] = settings.config.url
    return outputs


def main() -> None:
    for name, value in deploy(load()).items():
        pulumi.export(name, value)
