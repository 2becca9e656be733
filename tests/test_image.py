"""ServiceImage: what it asks pulumi-docker to build, and the reference it hands the Deployment."""

from __future__ import annotations

from typing import Any

import pytest

import harness
from infra.components.image import digest_reference, image_tag
from infra.settings import BuildInfo, ImageSettings

BASE: dict[str, Any] = {
    "goapp:namespace": "img",
    "goapp:image": {
        "repository": "127.0.0.1:5000/goapp",
        "baseImages": {"go": "goapp-local/go:1.26.8", "runtime": "goapp-local/static:1"},
    },
}


def built(result: harness.Run) -> dict[str, Any]:
    return result.mocks.one(harness.DOCKER_IMAGE).inputs


def deployed_image(result: harness.Run) -> str:
    deployment = result.mocks.one("kubernetes:apps/v1:Deployment").inputs
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def test_builds_goapp_dockerfile_with_stamps_and_base_images(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"GOAPP_VERSION": "1.4.0", "GOAPP_COMMIT": "0123456789abcdef0123"}
    result = harness.run(BASE, monkeypatch=monkeypatch, environ=environ)
    build = built(result)["build"]
    assert build["context"].endswith("/goapp")
    assert build["dockerfile"].endswith("/goapp/Dockerfile")
    assert build["args"] == {
        "VERSION": "1.4.0",
        "COMMIT": "0123456789abcdef0123",
        "GO_IMAGE": "goapp-local/go:1.26.8",
        "RUNTIME_IMAGE": "goapp-local/static:1",
    }
    assert build["extraOptions"] == ["--network", "host", "--platform", "linux/amd64"]
    assert build["env"] == {"DOCKER_BUILDKIT": "0"}
    assert built(result)["imageName"] == "127.0.0.1:5000/goapp:1.4.0-0123456789ab"


def test_base_images_default_to_the_dockerfile(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**BASE, "goapp:image": {"repository": "registry.example.com/goapp"}}
    assert set(built(harness.run(config, monkeypatch=monkeypatch))["build"]["args"]) == {"VERSION", "COMMIT"}


def test_pushed_image_is_deployed_by_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    result = harness.run(BASE, monkeypatch=monkeypatch)
    assert built(result)["skipPush"] is False
    assert deployed_image(result) == f"127.0.0.1:5000/goapp@{harness.FAKE_DIGEST}"


def test_build_only_image_is_deployed_by_its_content_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**BASE, "goapp:image": {**BASE["goapp:image"], "push": False, "tag": "1.0.0"}}
    result = harness.run(config, monkeypatch=monkeypatch)
    assert built(result)["skipPush"] is True
    assert deployed_image(result) == f"127.0.0.1:5000/goapp:1.0.0-{harness.FAKE_IMAGE_ID}"
    assert any("goapp:image.push is false" in w for w in result.warnings)


def test_registry_credentials_reach_the_push(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = {"server": "registry.example.com", "username": "ci", "password": {"secure": "v1:x"}}
    config = {**BASE, "goapp:image": {"repository": "registry.example.com/goapp", "registry": registry}}
    assert built(harness.run(config, monkeypatch=monkeypatch))["registry"] == {
        "server": "registry.example.com",
        "username": "ci",
    }


@pytest.mark.parametrize(
    ("digests", "expected"),
    [
        ([], None),
        (["127.0.0.1:5000/goapp@sha256:" + "a" * 64], "127.0.0.1:5000/goapp@sha256:" + "a" * 64),
        (["127.0.0.1:5000/other@sha256:" + "a" * 64], None),
        (
            ["127.0.0.1:5000/goapp-x@sha256:" + "b" * 64, "127.0.0.1:5000/goapp@sha256:" + "c" * 64],
            "127.0.0.1:5000/goapp@sha256:" + "c" * 64,
        ),
    ],
)
def test_digest_reference_picks_the_pushed_repository(digests: list[str], expected: str | None) -> None:
    assert digest_reference("127.0.0.1:5000/goapp", digests) == expected


@pytest.mark.parametrize(
    ("tag", "build", "expected"),
    [
        ("2.0.1", BuildInfo("9.9.9", "abc"), "2.0.1"),
        (None, BuildInfo("v1.2.3", "0123456789abcdef"), "v1.2.3-0123456789ab"),
        (None, BuildInfo("dev", "unknown"), "dev"),
        (None, BuildInfo("v1.2.3-4-gabc-dirty", "unknown"), "v1.2.3-4-gabc-dirty"),
        (None, BuildInfo("feature/x+y", "unknown"), "feature-x-y"),
    ],
)
def test_image_tag(tag: str | None, build: BuildInfo, expected: str) -> None:
    assert image_tag(ImageSettings(repository="example.com/goapp", tag=tag), build) == expected
