"""The configuration contract: typed, immutable settings validated from the raw stack config.

Every `goapp:*` key of a stack file is described here once. `load_settings` validates the
whole config before the program registers anything, and reports every problem at once, each
naming the full key (`goapp:autoscaling.maxReplicas`), the bad value and what is allowed.
Components receive a `Settings` and never read `pulumi.Config` themselves.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from infra.quantity import QUANTITY_FORM, parse_quantity

NAMESPACE = "goapp"
"""The Pulumi config namespace of every key of the contract."""

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"

# Environment variables the program derives from other keys: setting them in goapp:env would
# silently fight the derived value, so the contract rejects them and names the key to use.
DERIVED_ENV = {
    "PORT": "goapp:port",
    "DATA_DIR": "goapp:storage (mounted at /data)",
    "SHUTDOWN_DRAIN": "goapp:shutdown.drainSeconds",
    "SHUTDOWN_TIMEOUT": "goapp:shutdown.timeoutSeconds",
    "GOMEMLIMIT": "goapp:resources.limits.memory",
}


class ConfigError(Exception):
    """The stack config breaks the contract; `problems` lists every violation, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"invalid stack configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


class _Model(BaseModel):
    """Stack YAML keys are camelCase; unknown keys are errors, settings are immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )


def _quantity(value: str) -> str:
    parse_quantity(value)
    return value


def _positive_quantity(value: str) -> str:
    if parse_quantity(value) <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]
PositiveQuantity = Annotated[str, AfterValidator(_positive_quantity)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]
# A base image may be pinned by digest: name[:tag][@sha256:<64 hex>].
ImageReference = Annotated[str, StringConstraints(pattern=r"^[^\s@]+(@sha256:[0-9a-f]{64})?$")]


class BaseImages(_Model):
    """Overrides of the Dockerfile's GO_IMAGE and RUNTIME_IMAGE build args."""

    go: ImageReference | None = None
    runtime: ImageReference | None = None


class RegistryCredentials(_Model):
    """Credentials for pushing to a private registry; the password must be a Pulumi secret."""

    server: Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\s/]+$")]
    username: Annotated[str, StringConstraints(min_length=1)]
    password: SecretStr


class ImageSettings(_Model):
    repository: Annotated[str, StringConstraints(min_length=1)]
    tag: str | None = None
    push: bool = True
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    base_images: BaseImages = BaseImages()
    registry: RegistryCredentials | None = None

    @field_validator("repository")
    @classmethod
    def _no_tag_or_digest(cls, value: str) -> str:
        # A colon after the last slash is a tag; a colon before it is a registry port.
        if "@" in value or ":" in value.rsplit("/", 1)[-1]:
            raise ValueError(f"{value!r} must be a repository without tag or digest (set the tag in goapp:image.tag)")
        if not re.fullmatch(r"[a-z0-9]+(?:[._\-/:][a-z0-9]+)*", value):
            raise ValueError(f"{value!r} is not a valid repository name (lowercase, digits, . _ - / and host:port)")
        return value

    @field_validator("tag")
    @classmethod
    def _immutable_tag(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value == "latest":
            raise ValueError("'latest' is rejected: it is mutable and hides what runs; use a version or commit tag")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value):
            raise ValueError(
                f"{value!r} is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)"
            )
        return value


class ResourceAmounts(_Model):
    cpu: Quantity
    memory: Quantity
    # Logs and the /tmp emptyDir count against the node's disk; without a request the scheduler
    # cannot account for it and the kubelet evicts the pod first under disk pressure.
    ephemeral_storage: Quantity = "32Mi"


class ResourceLimits(_Model):
    cpu: Quantity | None = None
    memory: Quantity
    ephemeral_storage: Quantity = "256Mi"


class Resources(_Model):
    """Requests and limits; every limit must be at least its request."""

    requests: ResourceAmounts = ResourceAmounts(cpu="50m", memory="64Mi")
    limits: ResourceLimits = ResourceLimits(memory="128Mi")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        if self.limits.cpu is not None and parse_quantity(self.limits.cpu) < parse_quantity(self.requests.cpu):
            raise ValueError(f"limits.cpu {self.limits.cpu!r} must be at least requests.cpu {self.requests.cpu!r}")
        if parse_quantity(self.limits.memory) < parse_quantity(self.requests.memory):
            raise ValueError(
                f"limits.memory {self.limits.memory!r} must be at least requests.memory {self.requests.memory!r}"
            )
        if parse_quantity(self.limits.ephemeral_storage) < parse_quantity(self.requests.ephemeral_storage):
            raise ValueError(
                f"limits.ephemeralStorage {self.limits.ephemeral_storage!r} must be at least "
                f"requests.ephemeralStorage {self.requests.ephemeral_storage!r}"
            )
        return self


AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany"]


class Storage(_Model):
    size: PositiveQuantity = "1Gi"
    access_mode: AccessMode = "ReadWriteOnce"
    storage_class: Annotated[str, StringConstraints(min_length=1)] | None = None


class Autoscaling(_Model):
    min_replicas: Annotated[int, Field(ge=1)]
    max_replicas: Annotated[int, Field(ge=1)]
    cpu_utilization: Annotated[int, Field(ge=1, le=100)] = 70

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) must be at least minReplicas ({self.min_replicas})")
        return self


class ServiceSettings(_Model):
    """How the Service exposes the pods. A NodePort may carry a fixed port (30000–32767)."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    node_port: Annotated[int, Field(ge=30000, le=32767)] | None = None

    @model_validator(mode="after")
    def _node_port_needs_type(self) -> ServiceSettings:
        if self.node_port is not None and self.type == "ClusterIP":
            raise ValueError("nodePort needs type NodePort or LoadBalancer")
        return self


class KubernetesTarget(_Model):
    """Which cluster to talk to. Absent fields fall back to the ambient kubeconfig."""

    kubeconfig: Annotated[str, StringConstraints(min_length=1)] | None = None
    context: Annotated[str, StringConstraints(min_length=1)] | None = None


class Shutdown(_Model):
    """Graceful stop timing; terminationGracePeriodSeconds is derived from it.

    preStopSeconds lets endpoints drop the pod before SIGTERM, drainSeconds is the app's
    SHUTDOWN_DRAIN (readiness off, still serving), timeoutSeconds bounds in-flight requests.
    """

    pre_stop_seconds: Annotated[int, Field(ge=0, le=120)] = 5
    drain_seconds: Annotated[int, Field(ge=0, le=300)] = 5
    timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 15

    @property
    def grace_period_seconds(self) -> int:
        # A margin past the app's own budget so the kubelet's SIGKILL never cuts a clean stop short.
        return self.pre_stop_seconds + self.drain_seconds + self.timeout_seconds + 5


class StackConfig(_Model):
    """The `goapp:*` keys of one stack file, as written there."""

    namespace: Annotated[str, StringConstraints(max_length=63, pattern=DNS1123_LABEL)]
    image: ImageSettings
    replicas: Annotated[int, Field(ge=1)] = 1
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    env: dict[EnvName, str] = {}
    secret_env: dict[EnvName, SecretStr] = {}
    resources: Resources = Resources()
    storage: Storage = Storage()
    autoscaling: Autoscaling | None = None
    service: ServiceSettings = ServiceSettings()
    kubernetes: KubernetesTarget = KubernetesTarget()
    shutdown: Shutdown = Shutdown()
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None

    @model_validator(mode="after")
    def _cross_key_rules(self) -> StackConfig:
        if self.storage.access_mode == "ReadWriteOncePod" and self.max_replicas > 1:
            raise ValueError(
                "goapp:storage.accessMode ReadWriteOncePod allows a single pod: "
                f"at most 1 replica can run, but up to {self.max_replicas} can "
                "(set goapp:replicas to 1 and goapp:autoscaling.maxReplicas to 1, or use ReadWriteMany)"
            )
        return self

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas


@dataclass(frozen=True)
class BuildInfo:
    """What the image is stamped with (goapp's VERSION and COMMIT build args)."""

    version: str = "dev"
    commit: str = "unknown"


@dataclass(frozen=True)
class Settings:
    """Everything one deployment of goapp needs, validated. Built once by `load_settings`."""

    project: str
    stack: str
    config: StackConfig
    build: BuildInfo
    render_dir: Path | None = None
    """Set in render mode: objects are written as YAML here instead of applied to a cluster."""
    image_digest: str | None = None
    """A prebuilt image digest (sha256:…): deploy `repository@digest` and build nothing."""

    @property
    def instance(self) -> str:
        return f"{self.project}-{self.stack}"

    @property
    def warnings(self) -> list[str]:
        """Legal but risky choices, reported by the program without failing."""
        found = []
        storage = self.config.storage
        if storage.access_mode == "ReadWriteOnce" and self.config.max_replicas > 1:
            found.append(
                f"goapp:storage.accessMode ReadWriteOnce with up to {self.config.max_replicas} replicas: "
                "every replica must be scheduled on the node that holds the volume; "
                "use ReadWriteMany to spread replicas across nodes"
            )
        if storage.access_mode == "ReadOnlyMany":
            found.append(
                "goapp:storage.accessMode ReadOnlyMany: the notes API cannot write, so /readyz will report "
                "the data directory as not writable"
            )
        if not self.config.image.push and self.image_digest is None and self.render_dir is None:
            found.append(
                "goapp:image.push is false: the Deployment references the tag, not a digest; "
                "only use this with a cluster that shares this Docker engine's images"
            )
        return found


# --- loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawStackConfig:
    """Config exactly as the engine hands it over: `goapp:key` → string (JSON for objects)."""

    values: Mapping[str, str]
    secret_keys: frozenset[str] = frozenset()


_TOP_LEVEL_KEYS = {field.alias or name for name, field in StackConfig.model_fields.items()}
_SECRET_ONLY_KEYS = {"secretEnv"}


def load_settings(
    raw: RawStackConfig,
    *,
    project: str,
    stack: str,
    environ: Mapping[str, str],
) -> Settings:
    """Validate the whole stack config at once; raise ConfigError listing every problem."""
    problems: list[str] = []
    document: dict[str, Any] = {}
    for full_key, text in sorted(raw.values.items()):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in _TOP_LEVEL_KEYS:
            problems.append(_unknown_key_message(full_key, key, _TOP_LEVEL_KEYS))
            continue
        if key in _SECRET_ONLY_KEYS and full_key not in raw.secret_keys:
            problems.append(
                f"{full_key}: values must be Pulumi secrets; set them with "
                f"`pulumi config set --secret --path '{full_key}.NAME' VALUE`"
            )
            continue
        document[key] = _decode(text)

    problems.extend(_env_name_problems(document))
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(document)
    except ValidationError as error:
        problems.extend(_describe(error))
    _check_registry_secret(raw, config, problems)

    render_dir = environ.get("GOAPP_RENDER_DIR") or None
    image_digest = environ.get("GOAPP_IMAGE_DIGEST") or None
    if image_digest is not None and not re.fullmatch(DIGEST_PATTERN, image_digest):
        problems.append(
            f"GOAPP_IMAGE_DIGEST: got {image_digest!r}, expected sha256: followed by 64 lowercase hex digits"
        )
    if render_dir is not None and image_digest is None:
        problems.append(
            "GOAPP_IMAGE_DIGEST: render mode (GOAPP_RENDER_DIR) builds nothing and needs the digest of a pushed "
            "image, as sha256:<64 hex>; rendered manifests reference goapp:image.repository@<digest>"
        )
    if problems or config is None:
        raise ConfigError(problems)

    return Settings(
        project=project,
        stack=stack,
        config=config,
        build=BuildInfo(
            version=environ.get("GOAPP_VERSION") or "dev",
            commit=environ.get("GOAPP_COMMIT") or "unknown",
        ),
        render_dir=Path(render_dir) if render_dir else None,
        image_digest=image_digest,
    )


def _decode(text: Any) -> Any:
    """Objects and lists arrive as JSON text; scalars stay strings for pydantic's coercion."""
    if isinstance(text, str) and text[:1] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _env_name_problems(document: Mapping[str, Any]) -> list[str]:
    """Rules on variable names alone, checked on the raw maps so they are reported even when a
    value elsewhere in the same map is invalid."""
    env = _names(document.get("env"))
    secret_env = _names(document.get("secretEnv"))
    problems = []
    for key, names in (("env", env), ("secretEnv", secret_env)):
        for name in sorted(names & set(DERIVED_ENV)):
            problems.append(f"{NAMESPACE}:{key}.{name}: {name} is derived from {DERIVED_ENV[name]}, set that instead")
    overlap = sorted(env & secret_env)
    if overlap:
        problems.append(
            f"{NAMESPACE}:env and {NAMESPACE}:secretEnv must not share names; both set {', '.join(overlap)}"
        )
    return problems


def _names(value: Any) -> set[str]:
    return {str(k) for k in value} if isinstance(value, dict) else set()


def _check_registry_secret(raw: RawStackConfig, config: StackConfig | None, problems: list[str]) -> None:
    if config is None or config.image.registry is None:
        return
    if f"{NAMESPACE}:image" not in raw.secret_keys:
        problems.append(
            f"{NAMESPACE}:image.registry.password: must be a Pulumi secret; set it with "
            f"`pulumi config set --secret --path '{NAMESPACE}:image.registry.password' VALUE`"
        )


def _unknown_key_message(full_key: str, key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f"did you mean {NAMESPACE}:{close[0]}?" if close else f"known keys: {', '.join(sorted(known))}"
    return f"{full_key}: unknown key; {hint}"


def _describe(error: ValidationError) -> list[str]:
    """Turn pydantic's errors into one line each that names the full stack-config key."""
    lines = []
    for item in error.errors(include_url=False):
        # pydantic marks a bad dict key with a trailing "[key]"; the key itself names the problem.
        location = [str(part) for part in item["loc"] if part != "[key]"]
        key = f"{NAMESPACE}:" + ".".join(location) if location else f"{NAMESPACE}:"
        if item["type"] == "extra_forbidden":
            lines.append(_unknown_nested_key(key, location))
            continue
        if item["type"] == "missing":
            lines.append(f"{key}: required but not set")
            continue
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "<secret>" if _is_secret_path(location) else repr(value)
        if isinstance(value, dict):
            lines.append(f"{key}: {message}")
        else:
            lines.append(f"{key}: got {shown}; {_allowed(item, message)}")
    return lines


def _is_secret_path(location: list[str]) -> bool:
    return bool(location) and (location[0] == "secretEnv" or location[-1] == "password")


def _allowed(item: Any, message: str) -> str:
    if item["type"] == "string_pattern_mismatch":
        pattern = item.get("ctx", {}).get("pattern", "")
        described = {
            ENV_NAME_PATTERN: "names must match [A-Za-z_][A-Za-z0-9_]*",
            DNS1123_LABEL: "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
            "with a letter or digit",
        }
        return described.get(pattern, f"must match {pattern}")
    if "quantity" in message:
        return message if QUANTITY_FORM in message else f"{message}; expected {QUANTITY_FORM}"
    return message


def _unknown_nested_key(key: str, location: list[str]) -> str:
    parent_model = _model_at(location[:-1])
    known = {f.alias or n for n, f in parent_model.model_fields.items()} if parent_model else set()
    close = difflib.get_close_matches(location[-1], sorted(known), n=1, cutoff=0.6)
    parent = f"{NAMESPACE}:" + ".".join(location[:-1])
    if close:
        return f"{key}: unknown key; did you mean {parent}.{close[0]}?"
    return f"{key}: unknown key; {parent} accepts {', '.join(sorted(known))}"


def _model_at(path: list[str]) -> type[BaseModel] | None:
    """The model that describes the object at a config path, for suggesting sibling keys."""
    model: type[BaseModel] = StackConfig
    for part in path:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model
