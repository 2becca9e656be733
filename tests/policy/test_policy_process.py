"""The pack as the engine starts it (policy/analyzer <engine address>, from the program's directory), spoken to
over gRPC as the engine does: it must start, describe its policies and block a bad resource."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf import empty_pb2, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def analyzer(tmp_path: Path) -> Iterator[Any]:
    process = subprocess.Popen(
        [str(ROOT / "policy" / "analyzer"), "127.0.0.1:1"],
        cwd=tmp_path,
        env={**os.environ, "GOAPP_POLICY_PYTHON": sys.executable},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.kill()
            _, stderr = process.communicate(timeout=30)
            pytest.fail(f"the pack printed {port!r} instead of its port; stderr:\n{stderr}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=30)


def test_the_pack_starts_and_blocks_a_privileged_deployment(analyzer: Any, deployment: dict[str, Any]) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "goapp-policies"
    assert {p.name for p in info.policies} >= {"pod-security-restricted", "images-by-digest", "prod-availability"}

    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    properties = struct_pb2.Struct()
    properties.update(deployment)
    response = analyzer.Analyze(
        proto.AnalyzeRequest(type="kubernetes:apps/v1:Deployment", properties=properties, urn="urn:x", name="goapp")
    )
    [diagnostic] = response.diagnostics
    assert diagnostic.policyName == "pod-security-restricted"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert 'container "goapp" is privileged' in diagnostic.message
