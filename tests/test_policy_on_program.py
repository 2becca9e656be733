"""One source for the security and probe contract: the policy pack's own checks judge what the program declares.

Every stack runs under Pulumi's mocks and every Kubernetes object it registers goes through the same checks the
pack runs inside `pulumi preview` and on rendered YAML; none may be violated.
"""

from __future__ import annotations

from typing import Any

import pytest
from goapp_policy.manifests import violations
from goapp_policy.workloads import type_token

import harness


def as_manifest(resource: harness.Registered) -> tuple[str, dict[str, Any]]:
    """A registered resource as the Kubernetes object the provider would apply, keyed by its type token."""
    _, group_version, kind = resource.typ.split(":")
    group, version = group_version.split("/")
    api_version = version if group == "core" else f"{group}/{version}"
    obj = {"apiVersion": api_version, "kind": kind, **resource.inputs}
    assert type_token(api_version, kind) == resource.typ
    return resource.typ, obj


def declared_objects(result: harness.Run) -> list[tuple[str, dict[str, Any]]]:
    return [
        as_manifest(r)
        for r in result.mocks.resources
        if r.typ.startswith("kubernetes:") and not r.typ.startswith("pulumi:providers")
    ]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_stack_passes_every_policy(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = harness.run(harness.stack_file_config(stack), stack=stack, monkeypatch=monkeypatch)
    objects = declared_objects(result)
    assert {token.rsplit(":", 1)[-1] for token, _ in objects} >= {"Deployment", "Namespace", "Service"}
    assert violations(objects, stack) == []


def test_the_checks_would_see_a_violation_in_declared_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversion keeps what the checks read: a privileged container is caught on the declared objects."""
    result = harness.run(harness.stack_file_config("prod"), stack="prod", monkeypatch=monkeypatch)
    objects = declared_objects(result)
    deployment = next(obj for token, obj in objects if token.endswith(":Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    found = violations(objects, "prod")
    assert any(message.startswith("pod-security-restricted: Deployment goapp-prod/goapp") for message in found), found
