"""The configuration contract: typed, immutable settings validated from the raw stack config.

Every `goapp:*` key of a stack file is described here once. `load_settings` validates the
whole config before the program registers anything, and reports every problem at once, each
naming the full key (`goapp:autoscaling.maxReplicas`), the bad value and what is allowed.
Components receive a `Settings` and never read `pulumi.Config` themselves.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

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

from infra.durations import parse_duration
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
    "CONFIG_FILE": "goapp:liveConfig (the mounted file of live settings)",
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


class KeyedError(ValueError):
    """A rule broken by one key inside the model that raised it.

    `path` is that key's dotted stack-config path relative to the model (camelCase, as in the stack file), so
    a cross-field error starts with the full key it is about, like every single-field error.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


def _non_negative_quantity(value: str) -> str:
    # Kubernetes refuses negative requests ("must be greater than or equal to 0").
    if parse_quantity(value) < 0:
        raise ValueError("must be zero or more (Kubernetes refuses negative requests)")
    return value


def _positive_quantity(value: str) -> str:
    if parse_quantity(value) <= 0:
        raise ValueError("must be greater than zero")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError("must be a CIDR such as 10.0.0.0/8 or 10.244.0.1/32, host bits unset") from None
    return value


ROLLOUT_KEY_MIN_LENGTH = 32


def _rollout_key(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < ROLLOUT_KEY_MIN_LENGTH:
        raise ValueError(
            f"must be at least {ROLLOUT_KEY_MIN_LENGTH} characters of randomness, e.g. `openssl rand -base64 32`"
        )
    return value


NonNegativeQuantity = Annotated[str, AfterValidator(_non_negative_quantity)]
PositiveQuantity = Annotated[str, AfterValidator(_positive_quantity)]
Cidr = Annotated[str, AfterValidator(_cidr)]
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
    """Requests: what the scheduler reserves. Zero is legal (Kubernetes accepts it), negative is not."""

    cpu: NonNegativeQuantity
    memory: NonNegativeQuantity
    # Logs and the /tmp emptyDir count against the node's disk; without a request the scheduler
    # cannot account for it and the kubelet evicts the pod first under disk pressure.
    ephemeral_storage: NonNegativeQuantity = "32Mi"


class ResourceLimits(_Model):
    """Limits: a zero limit would leave the container nothing to run with, so each must be positive."""

    cpu: PositiveQuantity | None = None
    memory: PositiveQuantity
    ephemeral_storage: PositiveQuantity = "256Mi"


class Resources(_Model):
    """Requests and limits; every limit must be at least its request."""

    requests: ResourceAmounts = ResourceAmounts(cpu="50m", memory="64Mi")
    limits: ResourceLimits = ResourceLimits(memory="128Mi")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        pairs = (
            ("cpu", self.limits.cpu, self.requests.cpu),
            ("memory", self.limits.memory, self.requests.memory),
            ("ephemeralStorage", self.limits.ephemeral_storage, self.requests.ephemeral_storage),
        )
        for name, limit, request in pairs:
            if limit is not None and parse_quantity(limit) < parse_quantity(request):
                raise KeyedError(f"limits.{name}", f"got {limit!r}; must be at least requests.{name} {request!r}")
        return self


AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany"]


class Storage(_Model):
    """The notes volume. `protect` makes the engine refuse to delete or replace the claim (and its
    namespace, whose deletion would take the claim with it) until the user unprotects it explicitly."""

    size: PositiveQuantity = "1Gi"
    access_mode: AccessMode = "ReadWriteOnce"
    storage_class: Annotated[str, StringConstraints(min_length=1)] | None = None
    protect: bool = False


class ScalingRule(_Model):
    """How fast the autoscaler may move in one direction: it waits `stabilizationSeconds` of consistent
    recommendations, then changes at most the larger of `podsPerMinute` pods and `percentPerMinute` % a minute."""

    stabilization_seconds: Annotated[int, Field(ge=0, le=3600)]
    pods_per_minute: Annotated[int, Field(ge=1, le=1000)]
    percent_per_minute: Annotated[int, Field(ge=1, le=1000)]


class Autoscaling(_Model):
    """The HPA. Safe defaults: scale up at once (up to 4 pods or double a minute), scale down only after five
    minutes of lower load and then by at most 1 pod or 10 % a minute, so a short lull does not shed capacity."""

    min_replicas: Annotated[int, Field(ge=1)]
    max_replicas: Annotated[int, Field(ge=1)]
    cpu_utilization: Annotated[int, Field(ge=1, le=100)] = 70
    scale_up: ScalingRule = ScalingRule(stabilization_seconds=0, pods_per_minute=4, percent_per_minute=100)
    scale_down: ScalingRule = ScalingRule(stabilization_seconds=300, pods_per_minute=1, percent_per_minute=10)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise KeyedError(
                "maxReplicas", f"got {self.max_replicas}; must be at least minReplicas ({self.min_replicas})"
            )
        return self


class ServiceSettings(_Model):
    """How the Service exposes the pods. A NodePort may carry a fixed port (30000–32767)."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    node_port: Annotated[int, Field(ge=30000, le=32767)] | None = None

    @model_validator(mode="after")
    def _node_port_needs_type(self) -> ServiceSettings:
        if self.node_port is not None and self.type == "ClusterIP":
            raise KeyedError("nodePort", f"got {self.node_port}; needs type NodePort or LoadBalancer, not ClusterIP")
        return self


DNS1123Label = Annotated[str, StringConstraints(max_length=63, pattern=DNS1123_LABEL)]


class IngressPeers(_Model):
    """Who may open connections to the app port: pods of these namespaces, and these address blocks
    (a node address, for NodePort traffic that kube-proxy forwards from the node)."""

    namespaces: list[DNS1123Label] = []
    cidrs: list[Cidr] = []


class DnsPeers(_Model):
    """Where pods may send DNS queries: the cluster DNS, as pods selected by labels in a namespace (the
    usual kube-dns/CoreDNS deployment), or as address blocks where the DNS server is not a pod."""

    namespace: DNS1123Label | None = None
    pod_labels: dict[str, str] = {}
    cidrs: list[Cidr] = []

    @model_validator(mode="after")
    def _one_kind_of_peer(self) -> DnsPeers:
        by_pods = self.namespace is not None or bool(self.pod_labels)
        if by_pods and self.cidrs:
            raise KeyedError("cidrs", "set either cidrs or namespace with podLabels, not both")
        if by_pods and (self.namespace is None or not self.pod_labels):
            missing = "podLabels" if self.namespace is not None else "namespace"
            raise KeyedError(missing, "required with the other: cluster DNS pods are named by namespace and podLabels")
        return self

    @property
    def selects_pods(self) -> bool:
        return not self.cidrs

    @property
    def effective_namespace(self) -> str:
        return self.namespace or "kube-system"

    @property
    def effective_pod_labels(self) -> dict[str, str]:
        # kube-dns and CoreDNS deployments both carry this label in kubeadm, kOps, GKE, EKS and AKS clusters.
        return self.pod_labels or {"k8s-app": "kube-dns"}


SpreadRule = Literal["DoNotSchedule", "ScheduleAnyway"]


class Spread(_Model):
    """How pods spread over nodes and zones when more than one can run: at most `maxSkew` more pods in one
    domain than in another; `DoNotSchedule` makes that a hard rule (a pod waits rather than pile up),
    `ScheduleAnyway` a preference."""

    hostname: SpreadRule = "ScheduleAnyway"
    zone: SpreadRule = "ScheduleAnyway"
    max_skew: Annotated[int, Field(ge=1, le=10)] = 1


SectionName = Annotated[str, StringConstraints(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class GatewayRef(_Model):
    """The Gateway an HTTPRoute attaches to; `listener` (its sectionName) picks one listener, e.g. the HTTPS one."""

    name: DNS1123Label
    namespace: DNS1123Label | None = None
    listener: SectionName | None = None


class IngressTls(_Model):
    """TLS of an Ingress: a certificate in a Secret of the app's namespace, issued by cert-manager when
    `clusterIssuer` names one (it then writes that Secret)."""

    secret_name: DNS1123Label
    cluster_issuer: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None


class Exposure(_Model):
    """The way in for goapp:url: an Ingress (networking.k8s.io/v1) of an ingress class, or an HTTPRoute
    (Gateway API) attached to a named Gateway."""

    kind: Literal["ingress", "httpRoute"]
    class_name: DNS1123Label | None = None
    gateway: GatewayRef | None = None
    tls: IngressTls | None = None

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> Exposure:
        if self.kind == "ingress" and self.gateway is not None:
            raise KeyedError("gateway", "only for kind httpRoute; an Ingress names its controller with className")
        if self.kind == "httpRoute" and self.gateway is None:
            raise KeyedError("gateway", "required for kind httpRoute: the Gateway the route attaches to")
        if self.kind == "httpRoute" and (self.class_name is not None or self.tls is not None):
            field = "className" if self.class_name is not None else "tls"
            raise KeyedError(
                field, "only for kind ingress; a Gateway's listener terminates TLS (name it in gateway.listener)"
            )
        return self


class Canary(_Model):
    """A second deployment beside the stable one, sent `weight` % of the requests through the HTTPRoute.

    It runs `image` (a digest in goapp:image.repository) and/or goapp:env with `env` on top. `promote: true`
    makes the stable deployment take the canary's image and env and all the traffic; the canary stays at
    weight 0 until the section is removed, so no request is routed to a pod that is going away.
    """

    weight: Annotated[int, Field(ge=0, le=100)]
    image: Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)] | None = None
    env: dict[EnvName, str] = {}
    promote: bool = False

    @model_validator(mode="after")
    def _differs(self) -> Canary:
        if self.image is None and not self.env:
            raise KeyedError("image", "set image (sha256:<64 hex>) and/or env: a canary must differ from the stable")
        return self


class Monitoring(_Model):
    """Prometheus: pods always carry the prometheus.io scrape annotations; `serviceMonitor` adds a
    ServiceMonitor (Prometheus Operator) with `labels` for the operator's selector."""

    service_monitor: bool = False
    interval: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(s|m)$")] = "30s"
    labels: dict[str, str] = {}


LIVE_KEYS = ("APP_MESSAGE", "LOG_LEVEL")
"""The settings goapp reloads from CONFIG_FILE without a restart (goapp/internal/config.LiveKeys)."""


class NetworkPolicySettings(_Model):
    """The pods' firewall: the app port only from `allowFrom`, DNS only to `dns`, nothing else either way."""

    allow_from: IngressPeers = IngressPeers()
    dns: DnsPeers = DnsPeers()


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
    network_policy: NetworkPolicySettings = NetworkPolicySettings()
    rollout_key: Annotated[SecretStr, AfterValidator(_rollout_key)] | None = None
    """Keys the HMAC in the pod annotation that rolls pods when goapp:secretEnv changes."""
    allow_empty_passphrase: bool = False
    """Only for stacks on a developer's own machine: lets `pulumi up` run with the empty passphrase."""
    exposure: Exposure | None = None
    canary: Canary | None = None
    spread: Spread = Spread()
    monitoring: Monitoring = Monitoring()
    live_config: list[Literal["APP_MESSAGE", "LOG_LEVEL"]] = []
    """Keys of goapp:env that goapp reloads from a mounted file instead of restarting when they change."""

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas


def cross_key_problems(config: StackConfig) -> list[str]:
    """Rules between keys, each reported with the full key it is about, all at once."""
    problems = []
    if config.storage.access_mode == "ReadWriteOncePod" and config.max_replicas > 1:
        problems.append(
            f"{NAMESPACE}:storage.accessMode: ReadWriteOncePod allows a single pod: at most 1 replica can run, "
            f"but up to {config.max_replicas} can (set goapp:replicas to 1 and goapp:autoscaling.maxReplicas to 1, "
            "or use ReadWriteMany)"
        )
    if config.secret_env and config.rollout_key is None:
        problems.append(
            f"{NAMESPACE}:rolloutKey: required when goapp:secretEnv is set: it keys the HMAC that rolls pods when a "
            "secret changes, so the pod annotation reveals nothing a guess could be tested against; set it with "
            "`openssl rand -base64 32 | pulumi config set --secret goapp:rolloutKey`"
        )
    problems.extend(_url_problems(config))
    problems.extend(_shutdown_problems(config))
    if config.canary is not None:
        if config.exposure is None or config.exposure.kind != "httpRoute":
            problems.append(
                f"{NAMESPACE}:canary: needs goapp:exposure.kind httpRoute: the canary's share of the requests is a "
                "weight of the HTTPRoute's backends"
            )
        if config.canary.promote and config.canary.weight != 0:
            problems.append(
                f"{NAMESPACE}:canary.weight: got {config.canary.weight}; must be 0 with promote: true (the stable "
                "deployment takes the canary's image, env and all the traffic)"
            )
        for name in sorted(config.canary.env.keys() & set(DERIVED_ENV)):
            problems.append(f"{NAMESPACE}:canary.env.{name}: {name} is derived from {DERIVED_ENV[name]}")
        for name in sorted(config.canary.env.keys() & config.secret_env.keys()):
            problems.append(f"{NAMESPACE}:canary.env.{name}: set in goapp:secretEnv; a canary overrides goapp:env only")
        if config.storage.access_mode == "ReadWriteOncePod":
            problems.append(
                f"{NAMESPACE}:canary: the volume (ReadWriteOncePod) admits one pod; the canary shares it with the "
                "stable pods, so use ReadWriteOnce on one node or ReadWriteMany"
            )
    for name in config.live_config:
        if name not in config.env:
            problems.append(
                f"{NAMESPACE}:liveConfig: {name} is not in goapp:env; a live setting needs a value there to start from"
            )
        elif "\n" in config.env[name] or "\r" in config.env[name]:
            problems.append(f"{NAMESPACE}:env.{name}: a live setting is one line of its file; remove the line break")
    if config.monitoring.labels and not config.monitoring.service_monitor:
        problems.append(f"{NAMESPACE}:monitoring.labels: only used with serviceMonitor: true")
    return problems


# goapp's own defaults (goapp/internal/config), which goapp:env may override.
GOAPP_TIMEOUT_DEFAULTS = {"READ_HEADER_TIMEOUT": "5s", "READ_TIMEOUT": "10s", "WRITE_TIMEOUT": "10s"}


def _shutdown_problems(config: StackConfig) -> list[str]:
    """An upload accepted just before the stop must be able to finish within the shutdown timeout: goapp refuses
    to start otherwise, so the contract refuses the stack first, naming both sides."""
    timeouts = {}
    problems = []
    for name, default in GOAPP_TIMEOUT_DEFAULTS.items():
        text = config.env.get(name, default)
        try:
            timeouts[name] = parse_duration(text)
        except ValueError as error:
            problems.append(f"{NAMESPACE}:env.{name}: {error}")
    if problems:
        return problems
    needed = max(timeouts["READ_TIMEOUT"], timeouts["READ_HEADER_TIMEOUT"] + timeouts["WRITE_TIMEOUT"])
    if config.shutdown.timeout_seconds < needed:
        described = ", ".join(
            f"{name} {config.env.get(name, default)}" for name, default in GOAPP_TIMEOUT_DEFAULTS.items()
        )
        return [
            f"{NAMESPACE}:shutdown.timeoutSeconds: got {config.shutdown.timeout_seconds}; must be at least {needed:g} "
            f"(goapp's {described}: a request accepted before the stop may take READ_TIMEOUT, or "
            "READ_HEADER_TIMEOUT + WRITE_TIMEOUT, to finish); raise it, or lower those in goapp:env"
        ]
    return []


def _url_problems(config: StackConfig) -> list[str]:
    """A URL is a promise: refuse one that nothing in the stack would route, or TLS that nothing terminates."""
    if config.url is None:
        return (
            [f"{NAMESPACE}:exposure: needs goapp:url, the address it routes (its host and path)"]
            if config.exposure is not None
            else []
        )
    parsed = urlsplit(config.url)
    exposure, service = config.exposure, config.service
    if exposure is None:
        if service.type == "ClusterIP":
            return [
                f"{NAMESPACE}:url: nothing routes {config.url} to the pods: the Service is ClusterIP and there is no "
                "goapp:exposure; add one (an Ingress or an HTTPRoute) or make the Service a NodePort or LoadBalancer"
            ]
        if service.type == "NodePort" and parsed.port != service.node_port:
            return [
                f"{NAMESPACE}:url: port {parsed.port} of {config.url} is not the Service's nodePort "
                f"({service.node_port}) and there is no goapp:exposure to route it"
            ]
        return []
    problems = []
    if parsed.scheme == "https":
        if exposure.kind == "ingress" and exposure.tls is None:
            problems.append(
                f"{NAMESPACE}:exposure.tls: required for the https URL {config.url}: a Secret holding the "
                "certificate (secretName), issued by cert-manager when clusterIssuer is set"
            )
        if exposure.kind == "httpRoute" and (exposure.gateway is None or exposure.gateway.listener is None):
            problems.append(
                f"{NAMESPACE}:exposure.gateway.listener: required for the https URL {config.url}: the Gateway "
                "listener that terminates TLS for it"
            )
    elif exposure.tls is not None:
        problems.append(f"{NAMESPACE}:exposure.tls: the URL {config.url} is plain http; use an https URL with TLS")
    return problems


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
    """Config exactly as the engine hands it over: `goapp:key` → string (JSON for objects).

    The engine decrypts every value and only says which top-level keys held a secret somewhere; which nested
    values were encrypted is known only from the stack file itself (`secure_paths`, None when the config did
    not come from a stack file). `passphrase_secrets` says the stack's secrets provider is the passphrase one.
    """

    values: Mapping[str, str]
    secret_keys: frozenset[str] = frozenset()
    secure_paths: frozenset[str] | None = None
    passphrase_secrets: bool = False

    def is_secure(self, dotted: str) -> bool:
        """Whether the value at a full dotted key (`goapp:secretEnv.TOKEN`) was encrypted in the stack file."""
        if self.secure_paths is None:
            return dotted.split(".", 1)[0] in self.secret_keys
        parts = dotted.split(".")
        return any(".".join(parts[:n]) in self.secure_paths for n in range(1, len(parts) + 1))


@dataclass(frozen=True)
class Run:
    """What the engine is doing with the program."""

    dry_run: bool = True
    """A preview: nothing is applied, so nothing secret is stored."""


_TOP_LEVEL_KEYS = {field.alias or name for name, field in StackConfig.model_fields.items()}


def load_settings(
    raw: RawStackConfig,
    *,
    project: str,
    stack: str,
    environ: Mapping[str, str],
    run: Run = Run(),
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
        document[key] = _decode(text)

    problems.extend(_env_name_problems(document))
    problems.extend(_plain_secret_problems(raw, document))
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(document)
    except ValidationError as error:
        problems.extend(_describe(error))
    else:
        problems.extend(cross_key_problems(config))

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
    applies = not run.dry_run and render_dir is None
    if applies and config is not None and not config.allow_empty_passphrase:
        problems.extend(_empty_passphrase_problems(raw, stack, environ))
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


# Values that must be encrypted in the stack file: their full keys, for every value present.
def _secret_value_keys(document: Mapping[str, Any]) -> list[str]:
    keys = [f"{NAMESPACE}:secretEnv.{name}" for name in sorted(_names(document.get("secretEnv")))]
    image = document.get("image")
    if isinstance(image, dict) and isinstance(image.get("registry"), dict) and "password" in image["registry"]:
        keys.append(f"{NAMESPACE}:image.registry.password")
    if "rolloutKey" in document:
        keys.append(f"{NAMESPACE}:rolloutKey")
    return keys


def _plain_secret_problems(raw: RawStackConfig, document: Mapping[str, Any]) -> list[str]:
    """Each value the contract keeps secret must have been encrypted in the stack file, one by one: the engine
    marks a whole map secret when any one of its values is, which would hide a plaintext neighbour."""
    return [
        f"{key}: must be a Pulumi secret, but the stack file holds it in plaintext; set it with "
        f"`pulumi config set --secret --path '{key}' VALUE`"
        for key in _secret_value_keys(document)
        if not raw.is_secure(key)
    ]


def _empty_passphrase_problems(raw: RawStackConfig, stack: str, environ: Mapping[str, str]) -> list[str]:
    if not raw.passphrase_secrets or not _passphrase_is_empty(environ):
        return []
    return [
        f"PULUMI_CONFIG_PASSPHRASE: stack {stack!r} encrypts its secrets with the empty passphrase, which anyone "
        "holding the stack file can decrypt, so `pulumi up` is refused. Move it to a real secrets provider first, "
        f"e.g. `pulumi stack change-secrets-provider --stack {stack} 'awskms://alias/goapp'` (or a passphrase kept "
        "in your CI secrets: `pulumi stack change-secrets-provider passphrase`). A throwaway stack on your own "
        f"machine may opt out with `{NAMESPACE}:allowEmptyPassphrase: true`"
    ]


def _passphrase_is_empty(environ: Mapping[str, str]) -> bool:
    """As the CLI decides: PULUMI_CONFIG_PASSPHRASE wins, then PULUMI_CONFIG_PASSPHRASE_FILE's content."""
    if "PULUMI_CONFIG_PASSPHRASE" in environ:
        return environ["PULUMI_CONFIG_PASSPHRASE"] == ""
    path = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        try:
            return Path(path).read_text().rstrip("\r\n") == ""
        except OSError:
            return False
    return False


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
    for name in sorted(env & secret_env):
        problems.append(
            f"{NAMESPACE}:env.{name}: also set in {NAMESPACE}:secretEnv; a variable comes from one of them only"
        )
    return problems


def _names(value: Any) -> set[str]:
    return {str(k) for k in value} if isinstance(value, dict) else set()


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
        keyed = item.get("ctx", {}).get("error")
        if isinstance(keyed, KeyedError):
            lines.append(f"{NAMESPACE}:{'.'.join([*location, keyed.path])}: {keyed}")
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
    return bool(location) and (location[0] in ("secretEnv", "rolloutKey") or location[-1] == "password")


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
