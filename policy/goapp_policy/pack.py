"""The goapp policies as pulumi_policy objects: names, descriptions, config and the stack they run in."""

from __future__ import annotations

import os
from collections.abc import Callable

import pulumi
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


def current_stack() -> str | None:
    """The stack being previewed or updated, or None when the engine did not say.

    The engine starts the analyzer with PULUMI_STACK set (pulumi pkg/v3 resource/plugin/analyzer_plugin.go), and
    pulumi_policy hands it to pulumi.runtime before each validation. Without it pulumi.get_stack() answers a
    placeholder ("stack"), which must not pass for a real stack name: None makes every policy fail closed.
    """
    if not os.environ.get("PULUMI_STACK"):
        return None
    return pulumi.get_stack() or None


def _stack_list(config: object, key: str, default: list[str]) -> list[str]:
    values = config.get(key, default) if isinstance(config, dict) else default
    return [str(v) for v in values]


def _resource_policy(name: str, description: str, check: Callable[[str, Props], list[str]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _validate_digests(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    tag_stacks = _stack_list(dict(args.get_config()), "tagsAllowedInStacks", TAG_STACKS_DEFAULT)
    for message in checks.images_by_digest(args.resource_type, args.props, current_stack(), tag_stacks):
        report_violation(message, None)


def _validate_prod(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    prod_stacks = _stack_list(dict(args.get_config()), "stacks", PROD_STACKS_DEFAULT)
    resources = list(args.resources)
    pairs = [(r.resource_type, r.props) for r in resources]
    for index, message in checks.prod_availability_by_resource(pairs, current_stack(), prod_stacks):
        report_violation(message, resources[index].urn)


_STACKS_SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}

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
            properties={"tagsAllowedInStacks": {**_STACKS_SCHEMA, "default": TAG_STACKS_DEFAULT}},
        ),
    ),
    StackValidationPolicy(
        name=checks.PROD_AVAILABILITY,
        description="In production, every Deployment and StatefulSet keeps at least 3 replicas (directly or as "
        "its HPA's minReplicas) and has a PodDisruptionBudget selecting its pods.",
        validate=_validate_prod,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties={"stacks": {**_STACKS_SCHEMA, "default": PROD_STACKS_DEFAULT}}),
    ),
]
