"""The one place that reads the stack's configuration: what the engine hands over, and the stack file itself.

The engine passes every value decrypted and marks a whole top-level key secret when any value inside it is,
so which nested values were encrypted — and which secrets provider the stack uses — is known only from the
stack file (`Pulumi.<stack>.yaml` in the project's stackConfigDir). Both are read here, nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from infra.settings import NAMESPACE, RawStackConfig


@dataclass(frozen=True)
class StackFile:
    """What only the stack file knows."""

    secure_paths: frozenset[str]
    """Full dotted keys (`goapp:secretEnv.TOKEN`) whose value the file holds encrypted."""
    passphrase_secrets: bool
    """The stack's secrets provider is the passphrase one (no `secretsprovider`, or `passphrase`)."""


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
    stack_file = read_stack_file(project_root(), pulumi.get_stack())
    return RawStackConfig(
        values=values,
        secret_keys=frozenset(secret_keys),
        secure_paths=stack_file.secure_paths if stack_file else None,
        passphrase_secrets=stack_file.passphrase_secrets if stack_file else False,
    )


def project_root() -> Path:
    """Where Pulumi.yaml is. Newer language hosts say so; older ones (this project's, see versions.env) leave it
    unset and run the program in its own directory (`main: infra/`), so look there and upwards."""
    try:
        root = pulumi.get_root_directory()
    except Exception:  # older hosts and mocks leave the setting unset
        root = ""
    if root:
        return Path(root)
    here = Path(os.getcwd())
    return next((d for d in (here, *here.parents) if (d / "Pulumi.yaml").is_file()), here)


def read_stack_file(root: Path, stack: str) -> StackFile | None:
    """The facts of `Pulumi.<stack>.yaml`, or None when the config did not come from a stack file."""
    project_file = root / "Pulumi.yaml"
    if not project_file.is_file():
        return None
    project = yaml.safe_load(project_file.read_text()) or {}
    path = root / str(project.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return None
    return stack_file_facts(yaml.safe_load(path.read_text()) or {})


def stack_file_facts(document: Mapping[str, Any]) -> StackFile:
    provider = str(document.get("secretsprovider") or "passphrase")
    return StackFile(
        secure_paths=frozenset(secure_paths(document.get("config") or {})),
        passphrase_secrets=provider == "passphrase" or provider.startswith("passphrase:"),
    )


def secure_paths(config: Mapping[str, Any]) -> Iterator[str]:
    """Dotted keys of every `{secure: …}` value; a secure top-level key yields the key itself."""
    for key, value in config.items():
        yield from _secure_under(str(key), value)


def _secure_under(path: str, value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            yield path
            return
        for key, child in value.items():
            yield from _secure_under(f"{path}.{key}", child)
