"""The policy pack in the real engine: `pulumi preview --policy-pack policy` blocks a deliberately bad program.

Needs the CLI, the Python language host and the Kubernetes plugin from tools/pulumi/bootstrap.sh
(`make engine-test` bootstraps first).
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]


def test_preview_of_a_bad_program_is_blocked_naming_the_policies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gates.run", "engine-bad"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "the policy pack blocked the bad program" in output
    assert 'pod-security-restricted: Deployment default/bad: container "bad" is privileged' in output
