"""AppConfig: the environment injected into a service's containers, and the revision that rolls its pods."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.components.identity import AppIdentity, object_meta


@dataclass(frozen=True)
class AppConfigArgs:
    namespace: pulumi.Input[str]
    identity: AppIdentity
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain settings, injected from a ConfigMap."""
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret settings, injected from a Secret; values stay Pulumi secrets (encrypted in state)."""
    rollout_key: pulumi.Input[str] | None = None
    """A secret of at least 32 random bytes that keys the revision; required with `secret_env`."""
    live: Sequence[str] = ()
    """Keys of `env` the app reloads from a mounted file (CONFIG_FILE) instead of restarting: they are left out
    of the environment and of the revision, so changing one changes the file, never the pods."""


LIVE_DIR = "/etc/goapp/live"
LIVE_FILE = "live.env"
LIVE_VOLUME = "live-config"


def live_file(values: Mapping[str, str]) -> str:
    """The CONFIG_FILE format goapp reads: NAME=value lines, the value verbatim up to the end of the line."""
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"live setting {name} holds a line break; a CONFIG_FILE value is one line")
    return "".join(f"{name}={value}\n" for name, value in sorted(values.items()))


def rollout_revision(env: Mapping[str, str], secret_env: Mapping[str, str], key: str | None) -> str:
    """A value that changes exactly when the injected environment changes, for a pod annotation.

    Without secrets it is a plain SHA-256 of the settings, which the ConfigMap shows anyway. With secrets it is
    an HMAC keyed by the rollout key: an unkeyed digest would let anyone who may read pods test guesses of a
    weak secret offline, and the key is as secret as the values themselves.
    """
    document = json.dumps({"env": dict(env), "secretEnv": dict(secret_env)}, sort_keys=True).encode()
    if not secret_env:
        return "sha256:" + hashlib.sha256(document).hexdigest()
    if not key:
        raise ValueError("a rollout key is required to derive a revision from secret values")
    return "hmac-sha256:" + hmac.new(key.encode(), document, hashlib.sha256).hexdigest()


class AppConfig(pulumi.ComponentResource):
    """The settings a container reads from its environment.

    Creates: a ConfigMap `<name>-env` with `env`, and a Secret `<name>-secret-env` with `secret_env` when there
    is any. Exposes `env_from` for a container's `envFrom` (using it orders the pods after both objects) and
    `revision` for a pod annotation. Invariants: a secret value never lands in the ConfigMap, in plaintext state
    or in the revision; the revision changes exactly when a setting or secret changes, so annotated pods roll
    exactly then.
    """

    env_from: list[k8s.core.v1.EnvFromSourceArgs]
    revision: pulumi.Output[str]
    live_volume: k8s.core.v1.VolumeArgs | None
    """The live settings' ConfigMap as a volume to mount whole at LIVE_DIR (None without live settings)."""

    def __init__(self, name: str, args: AppConfigArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("goapp:config:AppConfig", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        unknown = sorted(set(args.live) - set(args.env))
        if unknown:
            raise ValueError(f"AppConfig {name!r}: live settings {', '.join(unknown)} have no value in env")
        env = {key: value for key, value in args.env.items() if key not in args.live}
        self.live_volume = None
        if args.live:
            live = k8s.core.v1.ConfigMap(
                f"{name}-live",
                metadata=object_meta(args.identity, f"{name}-live", args.namespace),
                data={LIVE_FILE: live_file({key: args.env[key] for key in args.live})},
                opts=child,
            )
            # Mounted whole, never with subPath: the kubelet updates a ConfigMap volume by swapping a symlink,
            # and a subPath mount would keep the first version forever.
            self.live_volume = k8s.core.v1.VolumeArgs(
                name=LIVE_VOLUME,
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=live.metadata.apply(lambda m: str(m.name))),
            )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-env",
            metadata=object_meta(args.identity, f"{name}-env", args.namespace),
            data=env,
            opts=child,
        )
        self.env_from = [
            k8s.core.v1.EnvFromSourceArgs(
                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=config_map.metadata.apply(lambda m: str(m.name)))
            )
        ]
        if not args.secret_env:
            self.revision = pulumi.Output.from_input(rollout_revision(env, {}, None))
        else:
            if args.rollout_key is None:
                raise ValueError(f"AppConfig {name!r}: secret_env needs a rollout_key (see AppConfigArgs)")
            secret = k8s.core.v1.Secret(
                f"{name}-secret-env",
                metadata=object_meta(args.identity, f"{name}-secret-env", args.namespace),
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in args.secret_env.items()},
                opts=child,
            )
            self.env_from.append(
                k8s.core.v1.EnvFromSourceArgs(
                    secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret.metadata.apply(lambda m: str(m.name)))
                )
            )
            keyed = pulumi.Output.all(key=args.rollout_key, values=pulumi.Output.all(**args.secret_env)).apply(
                lambda given: rollout_revision(env, given["values"], given["key"])
            )
            # Derived from secrets, so the engine would keep it secret; a keyed HMAC reveals nothing, and showing
            # it lets a preview tell that the pods will roll.
            self.revision = pulumi.Output.unsecret(keyed)
        self.register_outputs({"revision": self.revision})
