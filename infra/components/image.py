"""ServiceImage: goapp's container image, built from goapp/Dockerfile and optionally pushed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.settings import BuildInfo, ImageSettings


@dataclass(frozen=True)
class ServiceImageArgs:
    """What to build and where to push it.

    `context` is the directory holding goapp's Dockerfile. The build runs on the daemon's classic
    builder with host networking, so the builder stage reaches the Go module proxy the host reaches.
    """

    image: ImageSettings
    build: BuildInfo
    context: Path
    registry_password: pulumi.Input[str] | None = None


def image_tag(image: ImageSettings, build: BuildInfo) -> str:
    """The configured tag, else one derived from version and commit (never `latest`)."""
    if image.tag:
        return image.tag
    raw = build.version if build.commit == "unknown" else f"{build.version}-{build.commit[:12]}"
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in raw).lstrip(".-")
    return cleaned[:128] or "dev"


def build_args(image: ImageSettings, build: BuildInfo) -> dict[str, str]:
    args = {"VERSION": build.version, "COMMIT": build.commit}
    if image.base_images.go:
        args["GO_IMAGE"] = image.base_images.go
    if image.base_images.runtime:
        args["RUNTIME_IMAGE"] = image.base_images.runtime
    return args


class ServiceImage(pulumi.ComponentResource):
    """Builds goapp's image; `ref` is what the Deployment runs.

    Invariant: when the image is pushed, `ref` is the registry's repo digest
    (repository@sha256:…), so a moved tag can never change what runs. A build-only image
    (push: false) can only be referenced by its tag, for clusters sharing this Docker engine.
    """

    ref: pulumi.Output[str]
    image_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:image:ServiceImage", name, None, opts)
        settings = args.image
        registry = None
        if settings.registry is not None:
            registry = docker.RegistryArgs(
                server=settings.registry.server,
                username=settings.registry.username,
                password=args.registry_password,
            )
        built = docker.Image(
            f"{name}-image",
            image_name=f"{settings.repository}:{image_tag(settings, args.build)}",
            build=docker.DockerBuildArgs(
                context=str(args.context),
                dockerfile=str(args.context / "Dockerfile"),
                platform=settings.platform,
                args=build_args(settings, args.build),
                network="host",
                builder_version=docker.BuilderVersion.BUILDER_V1,
            ),
            skip_push=not settings.push,
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image_name = built.image_name
        self.ref = built.repo_digest if settings.push else built.image_name
        self.register_outputs({"ref": self.ref, "imageName": self.image_name})
