"""The policies as pulumi_policy runs them: through the analyzer service the engine calls during a preview.

The engine sends the policy config (--policy-pack-config) to Configure, each resource's inputs to Analyze and the
stack as a whole to AnalyzeStack; on its legacy launch path it also sets PULUMI_PROJECT, PULUMI_STACK and
PULUMI_DRY_RUN. These tests do the same, without the engine.
"""

import json
from pathlib import Path
from typing import Any

import pulumi.runtime.settings
import pytest
from goapp_policy import checks
from goapp_policy.pack import POLICIES, current_stack
from goapp_policy.workloads import type_token
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, StackValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

PACK = "goapp-policies"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def analyzer() -> _PolicyAnalyzerServicer:
    return _PolicyAnalyzerServicer(
        PACK, "1.0.0", POLICIES, EnforcementLevel.MANDATORY, None, None, None, None, None, None, None
    )


@pytest.fixture
def in_stack(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sets the stack as the engine does; the runtime settings the pack then configures are restored after."""
    monkeypatch.setattr(pulumi.runtime.settings, "SETTINGS", pulumi.runtime.settings.SETTINGS)

    def enter(stack: str) -> None:
        monkeypatch.setenv("PULUMI_PROJECT", "goapp")
        monkeypatch.setenv("PULUMI_STACK", stack)
        monkeypatch.setenv("PULUMI_DRY_RUN", "true")

    return enter


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def analyze(analyzer: _PolicyAnalyzerServicer, obj: dict[str, Any]) -> list[Any]:
    token = type_token(obj["apiVersion"], obj["kind"])
    request = proto.AnalyzeRequest(
        type=token,
        properties=_struct(obj),
        urn=f"urn:pulumi:test::goapp::{token}::{obj['metadata']['name']}",
        name=obj["metadata"]["name"],
    )
    return list(analyzer.Analyze(request, None).diagnostics)  # type: ignore[no-untyped-call]


def analyze_stack(analyzer: _PolicyAnalyzerServicer, objects: list[dict[str, Any]]) -> list[Any]:
    resources = []
    for obj in objects:
        token = type_token(obj["apiVersion"], obj["kind"])
        urn = f"urn:pulumi:test::goapp::{token}::{obj['metadata']['name']}"
        resources.append(
            proto.AnalyzerResource(type=token, properties=_struct(obj), urn=urn, name=obj["metadata"]["name"])
        )
    response = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources), None)  # type: ignore[no-untyped-call]
    return list(response.diagnostics)


def test_every_policy_is_mandatory_and_uniquely_named() -> None:
    names = [p.name for p in POLICIES]
    assert len(set(names)) == len(names)
    assert {p.enforcement_level for p in POLICIES} == {EnforcementLevel.MANDATORY}
    assert set(names) == {
        checks.POD_SECURITY,
        checks.READ_ONLY_ROOT,
        checks.RESOURCES,
        checks.PROBES,
        checks.IMAGE_DIGEST,
        checks.PROD_AVAILABILITY,
    }


def test_the_pack_describes_its_policies_and_config_to_the_engine(analyzer: _PolicyAnalyzerServicer) -> None:
    info = analyzer.GetAnalyzerInfo(None, None)  # type: ignore[no-untyped-call]
    assert info.name == PACK
    described = {p.name: p for p in info.policies}
    assert set(described) == {p.name for p in POLICIES}
    assert all(p.enforcementLevel == proto.MANDATORY for p in described.values())
    assert "tagsAllowedInStacks" in described[checks.IMAGE_DIGEST].configSchema.properties


def test_good_resources_pass_in_prod(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, prod_objects: list[dict[str, Any]]
) -> None:
    in_stack("prod")
    assert [d for obj in prod_objects for d in analyze(analyzer, obj)] == []
    assert analyze_stack(analyzer, prod_objects) == []


def test_a_privileged_deployment_is_blocked_naming_the_policy(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, deployment: dict[str, Any], container_of: Any
) -> None:
    in_stack("dev")
    container_of(deployment)["securityContext"]["privileged"] = True
    [diagnostic] = analyze(analyzer, deployment)
    assert diagnostic.policyName == checks.POD_SECURITY
    assert diagnostic.policyPackName == PACK
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert 'pod-security-restricted: Deployment goapp-prod/goapp: container "goapp" is privileged' in diagnostic.message


def test_the_stack_comes_from_the_engine(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, deployment: dict[str, Any], container_of: Any
) -> None:
    container_of(deployment)["image"] = "127.0.0.1:5000/goapp:dev"
    in_stack("local")
    assert analyze(analyzer, deployment) == []
    assert current_stack({}) == "local"
    in_stack("staging")
    [diagnostic] = analyze(analyzer, deployment)
    assert diagnostic.policyName == checks.IMAGE_DIGEST
    assert "in stack 'staging'" in diagnostic.message


def test_without_a_stack_from_the_engine_digests_are_required(
    analyzer: _PolicyAnalyzerServicer, monkeypatch: pytest.MonkeyPatch, deployment: dict[str, Any], container_of: Any
) -> None:
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    assert current_stack({}) is None
    container_of(deployment)["image"] = "goapp:dev"
    [diagnostic] = analyze(analyzer, deployment)
    assert diagnostic.policyName == checks.IMAGE_DIGEST


def configure(analyzer: _PolicyAnalyzerServicer, config: dict[str, dict[str, Any]]) -> None:
    """As `pulumi preview --policy-pack-config policy/config/<stack>.json` does."""
    request = proto.ConfigureAnalyzerRequest(
        policyConfig={k: proto.PolicyConfig(properties=_struct(v)) for k, v in config.items()}
    )
    analyzer.Configure(request, None)  # type: ignore[no-untyped-call]


def test_the_stack_comes_from_the_policy_config(
    analyzer: _PolicyAnalyzerServicer, monkeypatch: pytest.MonkeyPatch, deployment: dict[str, Any], container_of: Any
) -> None:
    # With a language host the engine sets no PULUMI_STACK: the config file is what names the stack.
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    container_of(deployment)["image"] = "127.0.0.1:5000/goapp:dev"
    configure(analyzer, json.loads((ROOT / "policy" / "config" / "local.json").read_text()))
    assert analyze(analyzer, deployment) == []
    configure(analyzer, json.loads((ROOT / "policy" / "config" / "dev.json").read_text()))
    [diagnostic] = analyze(analyzer, deployment)
    assert diagnostic.policyName == checks.IMAGE_DIGEST
    assert "in stack 'dev'" in diagnostic.message


def test_a_config_for_another_stack_is_refused(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, prod_objects: list[dict[str, Any]]
) -> None:
    in_stack("prod")
    configure(analyzer, json.loads((ROOT / "policy" / "config" / "local.json").read_text()))
    deployment = next(o for o in prod_objects if o["kind"] == "Deployment")
    [diagnostic] = analyze(analyzer, deployment)
    assert diagnostic.policyName == checks.IMAGE_DIGEST
    assert "the policy config names stack 'local' but the engine runs stack 'prod'" in diagnostic.message
    assert "policy/config/prod.json" in diagnostic.message
    [diagnostic] = analyze_stack(analyzer, prod_objects)
    assert diagnostic.policyName == checks.PROD_AVAILABILITY


def test_there_is_a_policy_config_for_every_stack() -> None:
    stacks = {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml")}
    configs = {p.stem: json.loads(p.read_text()) for p in (ROOT / "policy" / "config").glob("*.json")}
    assert set(configs) == stacks
    for stack, config in configs.items():
        assert config == {checks.IMAGE_DIGEST: {"stack": stack}, checks.PROD_AVAILABILITY: {"stack": stack}}


def test_prod_without_budget_is_blocked_at_the_deployment(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, prod_objects: list[dict[str, Any]]
) -> None:
    in_stack("prod")
    objects = [o for o in prod_objects if o["kind"] != "PodDisruptionBudget"]
    [diagnostic] = analyze_stack(analyzer, objects)
    assert diagnostic.policyName == checks.PROD_AVAILABILITY
    assert diagnostic.urn == "urn:pulumi:test::goapp::kubernetes:apps/v1:Deployment::goapp"
    assert "no PodDisruptionBudget selects its pods" in diagnostic.message
    in_stack("dev")
    assert analyze_stack(analyzer, objects) == []


def test_prod_stacks_are_configurable(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, prod_objects: list[dict[str, Any]]
) -> None:
    in_stack("staging")
    configure(analyzer, {checks.PROD_AVAILABILITY: {"stacks": ["staging", "prod"]}})
    objects = [o for o in prod_objects if o["kind"] != "PodDisruptionBudget"]
    assert [d.policyName for d in analyze_stack(analyzer, objects)] == [checks.PROD_AVAILABILITY]


def test_unknown_values_during_preview_are_not_blocked(
    analyzer: _PolicyAnalyzerServicer, in_stack: Any, deployment: dict[str, Any], container_of: Any
) -> None:
    # The image digest comes from the image build: during preview the engine sends it as unknown.
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    in_stack("prod")
    container_of(deployment)["image"] = UNKNOWN_STRING_VALUE
    [diagnostic] = analyze(analyzer, deployment)
    assert diagnostic.enforcementLevel == proto.ADVISORY
    assert "can't be known during preview" in diagnostic.message


def test_stack_policies_are_stack_validations() -> None:
    assert [p.name for p in POLICIES if isinstance(p, StackValidationPolicy)] == [checks.PROD_AVAILABILITY]
