"""The one place that reads the Pulumi engine's config: raw `goapp:*` strings and secret keys."""

from __future__ import annotations

from pulumi.runtime import config as runtime_config

from infra.settings import NAMESPACE, RawStackConfig


def read_stack_config() -> RawStackConfig:
    """Every key of the stack's config in the goapp namespace, as the engine passed it.

    The engine hands config over either explicitly or through PULUMI_CONFIG; both are read so that
    unknown keys can be reported (pulumi.Config only answers for keys one already knows).
    """
    values: dict[str, str] = {}
    for source in (runtime_config.get_config_env(), runtime_config.CONFIG.get()):
        values.update({k: v for k, v in source.items() if k.startswith(f"{NAMESPACE}:")})
    secret_keys = {key for key in values if runtime_config.is_config_secret(key)}
    secret_keys.update(k for k in runtime_config.get_config_secret_keys_env() if k in values)
    return RawStackConfig(values=values, secret_keys=frozenset(secret_keys))
