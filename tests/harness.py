"""Runs the Pulumi program under Pulumi's mocks and records what it registers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker
import yaml

from infra import program, stack_config
from infra.components import image as image_component
from ops import project

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = project.STACKS_DIR
STACKS = project.stacks()
FAKE_DIGEST = "sha256:" + "ab" * 32
MOCK_SECRET = "mock-secret-value"
"""Every decrypted value starts with this; `plaintext` says how a ciphertext decrypts under the mocks."""
FAKE_IMAGE_ID = "0123456789abcdef" * 4
DOCKER_IMAGE = "docker:image:Image"


# How the SDK serializes a secret value to a provider (pulumi.runtime.rpc's signature keys).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def reveal(value: Any) -> Any:
    """The plain value with every secret wrapper removed, for asserting on content."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


@dataclass
class Registered:
    typ: str
    name: str
    raw_inputs: dict[str, Any]
    """Inputs as the provider receives them, secrets still wrapped."""

    @property
    def inputs(self) -> dict[str, Any]:
        revealed: dict[str, Any] = reveal(self.raw_inputs)
        return revealed


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs back as outputs, and fills what a real provider computes."""

    preview: bool
    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ != DOCKER_IMAGE:  # the fake docker.Image records its own, richer inputs
            self.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        return (None if self.preview else f"{args.name}-id"), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Registered:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]


def fake_docker_image(mocks: RecordingMocks) -> type[pulumi.ComponentResource]:
    """Stands in for pulumi-docker 3.x's docker.Image, which shells out to the Docker CLI.

    Records what the program asked to build and answers like the real one: the image is named
    `repository:<tag>-<image id>`.
    """

    class FakeDockerImage(pulumi.ComponentResource):
        def __init__(
            self,
            name: str,
            image_name: str,
            build: Any,
            skip_push: bool | None = None,
            registry: Any = None,
            opts: pulumi.ResourceOptions | None = None,
        ) -> None:
            super().__init__(DOCKER_IMAGE, name, {}, opts)
            inputs = {
                "imageName": image_name,
                "skipPush": bool(skip_push),
                "build": {
                    "context": build.context,
                    "dockerfile": build.dockerfile,
                    "args": dict(build.args or {}),
                    "extraOptions": list(build.extra_options or []),
                    "env": dict(build.env or {}),
                },
                "registry": None if registry is None else {"server": registry.server, "username": registry.username},
            }
            mocks.resources.append(Registered(DOCKER_IMAGE, name, inputs))
            self.image_name = pulumi.Output.from_input(f"{image_name}-{FAKE_IMAGE_ID}")

    return FakeDockerImage


def fake_repo_digests(mocks: RecordingMocks) -> Callable[[str], list[str]]:
    """The local engine knows a digest only for an image it pushed: never in a first preview."""

    def repo_digests(image_name: str) -> list[str]:
        repository = image_name.rsplit(":", 1)[0]
        return [] if mocks.preview else [f"{repository}@{FAKE_DIGEST}"]

    return repo_digests


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Run:
    mocks: RecordingMocks
    outputs: dict[str, Any]
    warnings: list[str]
    options: dict[str, pulumi.ResourceOptions]
    """Each resource's options by name, as the program passed them (ignore_changes, parent, …)."""

    def parent_of(self, name: str) -> str | None:
        parent = self.options[name].parent
        return None if parent is None else str(getattr(parent, "_name", None))

    def parent_type_of(self, name: str) -> str | None:
        parent = self.options[name].parent
        return None if parent is None else str(getattr(parent, "_type", None))


def plaintext(ciphertext: str) -> str:
    """What a `secure:` value decrypts to under the mocks: distinct per ciphertext, 32 characters or more
    (the length the contract asks of goapp:rolloutKey)."""
    return f"{MOCK_SECRET}({ciphertext})".ljust(32, ".")


def engine_config(stack_yaml: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Stack-file config as the engine hands it to a program: strings, JSON for objects.

    Secure values cannot be decrypted here; they become `plaintext(ciphertext)` and their top-level key
    is marked secret, as the engine marks a key holding any secret.
    """
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in stack_yaml.items():
        plain, had_secret = _strip_secure(value)
        if had_secret:
            secret_keys.append(key)
        if isinstance(plain, (dict, list)):
            values[key] = json.dumps(plain)
        elif isinstance(plain, bool):
            values[key] = "true" if plain else "false"
        else:
            values[key] = str(plain)
    return values, secret_keys


def _strip_secure(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return plaintext(str(value["secure"])), True
    if isinstance(value, dict):
        found = False
        result = {}
        for k, v in value.items():
            result[k], inner = _strip_secure(v)
            found = found or inner
        return result, found
    if isinstance(value, list):
        items = [_strip_secure(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def stack_file_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
    return dict(document.get("config") or {})


def run(
    config: Mapping[str, Any],
    *,
    stack: str = "test",
    preview: bool = False,
    environ: Mapping[str, str] | None = None,
    monkeypatch: Any,
    mocks: RecordingMocks | None = None,
    stack_file: Mapping[str, Any] | None = None,
) -> Run:
    """Run the whole program under mocks with `config` (stack-file form) and return what happened.

    `stack_file` adds top-level keys of the stack file besides `config` (`secretsprovider`, say).
    """
    values, secret_keys = engine_config(config)
    mocks = mocks or RecordingMocks(preview=preview)
    capture = _Capture()
    logger = logging.getLogger(f"goapp-test-{id(mocks)}")
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    pulumi.runtime.set_mocks(mocks, project="goapp", stack=stack, preview=preview, logger=logger)
    pulumi.runtime.set_all_config(values, secret_keys)
    # What the program reads from the stack file itself: which values were encrypted, and the secrets provider.
    facts = stack_config.stack_file_facts({"config": dict(config), **(stack_file or {})})
    monkeypatch.setattr(stack_config, "read_stack_file", lambda root, stack: facts)
    monkeypatch.setattr(pulumi_docker, "Image", fake_docker_image(mocks))
    monkeypatch.setattr(image_component, "repo_digests", fake_repo_digests(mocks))
    isolated = ("GOAPP_RENDER_DIR", "GOAPP_IMAGE_DIGEST", "GOAPP_VERSION", "GOAPP_COMMIT")
    for name in (*isolated, "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)

    outputs: dict[str, Any] = {}
    options: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[args.name] = args.opts

    def keep(key: str) -> Callable[[Any], None]:
        return lambda value: outputs.__setitem__(key, value)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(record)
        exported = program.deploy(program.load())
        # One apply per output: in preview an unknown output (the digest) must not hide the known ones.
        settled = [pulumi.Output.from_input(value).apply(keep(key)) for key, value in exported.items()]
        return pulumi.Output.all(*settled)

    body()
    warnings = [r.getMessage() for r in capture.records if r.levelno == logging.WARNING]
    return Run(mocks=mocks, outputs=outputs, warnings=warnings, options=options)
