"""The goapp policies as pulumi_policy objects: names, descriptions, config and the stack they run in."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from goapp_policy import checks
from goapp_policy.workloads import Props

TAG_STACKS_DEFAULT = list(checks.TAG_STACKS_DEFAULT)
PROD_STACKS_DEFAULT = list(checks.PROD_STACKS_DEFAULT)


class StackUnknownError(ValueError):
    """The policy config and the engine disagree about the stack."""


def current_stack(config: Mapping[str, Any]) -> str | None:
    """The stack being previewed or updated: the policy config's "stack", else PULUMI_STACK, else None.

    With a Python language host, pulumi 3.260 starts the pack through the host and sends the stack only in the
    ConfigureStack call, which pulumi-policy 1.21 reads nothing but tags from; PULUMI_STACK is set only on the
    legacy pulumi-analyzer-policy-python path (pkg/v3 resource/plugin/analyzer_plugin.go). So every preview
    passes policy/config/<stack>.json (--policy-pack-config), and PULUMI_STACK, when present, must agree with it.
    None makes every policy fail closed.
    """
    configured = config.get("stack") or None
    engine = os.environ.get("PULUMI_STACK") or None
    if configured is not None and engine is not None and configured != engine:
        raise StackUnknownError(
            f"the policy config names stack {configured!r} but the engine runs stack {engine!r}; "
            f"pass --policy-pack-config policy/config/{engine}.json"
        )
    return str(configured) if configured is not None else engine


def _stack_list(config: Mapping[str, Any], key: str, default: list[str]) -> list[str]:
    return [str(v) for v in config.get(key, default)]


def _resource_policy(name: str, description: str, check: Callable[[str, Props], list[str]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _validate_digests(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    try:
        stack = current_stack(config)
    except StackUnknownError as error:
        report_violation(f"{checks.IMAGE_DIGEST}: {error}", None)
        return
    tag_stacks = _stack_list(config, "tagsAllowedInStacks", TAG_STACKS_DEFAULT)
    for message in checks.images_by_digest(args.resource_type, args.props, stack, tag_stacks):
        report_violation(message, None)


def _validate_prod(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    try:
        stack = current_stack(config)
    except StackUnknownError as error:
        report_violation(f"{checks.PROD_AVAILABILITY}: {error}", None)
        return
    prod_stacks = _stack_list(config, "stacks", PROD_STACKS_DEFAULT)
    resources = list(args.resources)
    pairs = [(r.resource_type, r.props) for r in resources]
    for index, message in checks.prod_availability_by_resource(pairs, stack, prod_stacks):
        report_violation(message, resources[index].urn)


_STACKS_SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
_STACK_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "description": "The stack under preview (policy/config/<stack>.json)",
}

POLICIES = [
    _resource_policy(
        checks.POD_SECURITY,
        "Pod templates meet the restricted Pod Security Standard: non-root, no privilege escalation, all "
        "capabilities dropped, seccomp RuntimeDefault, no host namespaces, ports, paths or privileged containers.",
        checks.pod_security,
    ),
    _resource_policy(
        checks.READ_ONLY_ROOT,
        "Every container runs with a read-only root filesystem; writable paths are explicit volumes.",
        checks.read_only_root,
    ),
    _resource_policy(
        checks.RESOURCES,
        "Every container declares CPU and memory requests and limits.",
        checks.container_resources,
    ),
    _resource_policy(
        checks.PROBES,
        "Every long-running container has liveness and readiness probes on distinct paths.",
        checks.health_probes,
    ),
    ResourceValidationPolicy(
        name=checks.IMAGE_DIGEST,
        description="Outside the local stack, every image is pinned by digest (name@sha256:...).",
        validate=_validate_digests,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(
            properties={
                "stack": _STACK_SCHEMA,
                "tagsAllowedInStacks": {**_STACKS_SCHEMA, "default": TAG_STACKS_DEFAULT},
            },
        ),
    ),
    StackValidationPolicy(
        name=checks.PROD_AVAILABILITY,
        description="In production, every Deployment and StatefulSet keeps at least 3 replicas (directly or as "
        "its HPA's minReplicas) and has a PodDisruptionBudget selecting its pods.",
        validate=_validate_prod,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(
            properties={"stack": _STACK_SCHEMA, "stacks": {**_STACKS_SCHEMA, "default": PROD_STACKS_DEFAULT}}
        ),
    ),
]
