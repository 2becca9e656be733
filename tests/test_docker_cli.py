"""The Docker CLI runner pulumi-docker 3.x uses: output of commands that exit at once is kept."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from pulumi_docker import docker as docker_cli

import infra.components.image  # noqa: F401  (installs the runner)
from infra.components import docker_cli as runner


def run(coroutine: Any) -> Any:
    """Run on a private loop: asyncio.run would unset the loop the Pulumi mock tests share."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_the_image_component_installs_the_runner() -> None:
    assert docker_cli.run_command_that_can_fail is runner.run_command


def test_output_of_a_command_that_exits_at_once_is_returned() -> None:
    for _ in range(20):  # the library's race lost this output on fast exits
        out = run(docker_cli.run_command_that_must_succeed(sys.executable, ["-c", "print('sha256:abc')"], None))  # type: ignore[arg-type]
        assert out == "sha256:abc"


def test_failures_keep_the_exit_code_and_stdin_reaches_the_command() -> None:
    script = "import sys; data = sys.stdin.read(); print(data.upper()); sys.exit(3)"
    result = run(runner.run_command(sys.executable, ["-c", script], None, False, True, stdin="secret"))
    assert (result.code, result.stdout) == (3, "SECRET")


def test_environment_is_added_to_the_callers() -> None:
    script = "import os; print(os.environ['EXTRA'], 'PATH' in os.environ)"
    result = run(runner.run_command(sys.executable, ["-c", script], None, False, True, env={"EXTRA": "x"}))
    assert result.stdout == "x True"
