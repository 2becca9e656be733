"""ServiceImage: goapp's container image, built from goapp/Dockerfile and pushed by digest.

Built with pulumi-docker's `docker.Image` at the 3.x line, which drives the Docker CLI from the
language host and needs no resource plugin: no pulumi-docker provider plugin can be built on this
project's machines (see versions.env). It builds during preview and update, pushes on update, and
names the result `repository:<tag>-<image id>`. The push then gets its registry digest from the
local Docker engine, so the Deployment runs `repository@sha256:…` and never a tag.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import pulumi

# pulumi-docker 3.x imports pkg_resources, which setuptools 80 marks deprecated with a UserWarning; the engine
# would print it on every build. The pin in requirements.txt keeps pkg_resources present.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
import pulumi_docker as docker  # noqa: E402

from infra.components import docker_cli  # noqa: E402
from infra.settings import BuildInfo, ImageSettings  # noqa: E402

docker_cli.install()


@dataclass(frozen=True)
class ServiceImageArgs:
    """What to build and where to push it.

    `context` is the directory holding goapp's Dockerfile. The build uses the daemon's classic
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
    return cleaned[:100] or "dev"


def build_args(image: ImageSettings, build: BuildInfo) -> dict[str, str]:
    args = {"VERSION": build.version, "COMMIT": build.commit}
    if image.base_images.go:
        args["GO_IMAGE"] = image.base_images.go
    if image.base_images.runtime:
        args["RUNTIME_IMAGE"] = image.base_images.runtime
    return args


def docker_build(image: ImageSettings, build: BuildInfo, context: Path) -> docker.DockerBuild:
    return docker.DockerBuild(  # type: ignore[no-untyped-call]
        context=str(context),
        dockerfile=str(context / "Dockerfile"),
        args=build_args(image, build),
        extra_options=["--network", "host", "--platform", image.platform],
        # The Dockerfile targets the classic builder, the one every Docker engine serves.
        env={"DOCKER_BUILDKIT": "0"},
    )


def repo_digests(image_name: str) -> list[str]:
    """The registry digests the local engine recorded for an image it pushed (empty if none)."""
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image_name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return []
    found: list[str] = json.loads(done.stdout or "null") or []
    return found


def digest_reference(repository: str, digests: list[str]) -> str | None:
    """`repository@sha256:…` among an image's repo digests, if it was pushed to that repository."""
    return next((d for d in digests if d.split("@", 1)[0] == repository and "@sha256:" in d), None)


class ServiceImage(pulumi.ComponentResource):
    """Builds goapp's image; `ref` is what the Deployment runs.

    Invariant: when the image is pushed, `ref` is the registry digest (repository@sha256:…), so a
    moved tag can never change what runs. In a preview before the first push the digest is not known
    yet and `ref` is unknown, as the engine shows it. A build-only image (push: false) can only be
    referenced by its content-derived tag, for clusters that share this Docker engine.
    """

    ref: pulumi.Output[str]
    image_name: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:image:ServiceImage", name, None, opts)
        settings = args.image
        registry = None
        if settings.registry is not None and args.registry_password is not None:
            registry = docker.ImageRegistry(
                server=settings.registry.server,
                username=settings.registry.username,
                password=args.registry_password,
            )
        built = docker.Image(
            f"{name}-image",
            image_name=f"{settings.repository}:{image_tag(settings, args.build)}",
            build=docker_build(settings, args.build, args.context),
            skip_push=not settings.push,
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image_name = built.image_name
        self.ref = (
            built.image_name.apply(lambda n: self._pinned(settings.repository, n))
            if settings.push
            else built.image_name
        )
        self.register_outputs({"ref": self.ref, "imageName": self.image_name})

    @staticmethod
    def _pinned(repository: str, image_name: str) -> pulumi.Output[str]:
        reference = digest_reference(repository, repo_digests(image_name))
        if reference is not None:
            return pulumi.Output.from_input(reference)
        if pulumi.runtime.is_dry_run():
            return _unknown()
        raise pulumi.RunError(
            f"{image_name} was pushed but the Docker engine recorded no digest for {repository}; "
            "check that the registry accepted the push"
        )


def _unknown() -> pulumi.Output[str]:
    """An output the engine shows as unknown: the digest of an image not pushed yet."""
    loop = asyncio.get_event_loop()
    value: asyncio.Future[str | None] = loop.create_future()
    value.set_result(None)
    known: asyncio.Future[bool] = loop.create_future()
    known.set_result(False)
    return pulumi.Output(set(), value, known)  # type: ignore[arg-type]
