"""How a failed engine step reaches the user: the stack, the step, the exit code and what the engine said."""

from __future__ import annotations

from typing import Any

import pulumi.automation as auto
import pytest
from pulumi.automation._cmd import CommandResult

from ops import stack as stack_command
from ops.engine import EngineError, _command_result

CONFIG_ERROR = "error: invalid stack configuration (1 problem):\n  - goapp:replicas: must be at least 1"


def test_a_command_error_splits_into_code_stdout_and_stderr() -> None:
    message = str(
        auto.errors.CommandError(CommandResult(stdout="Previewing update (dev):", stderr=CONFIG_ERROR, code=255))
    )
    assert _command_result(message) == (255, "Previewing update (dev):", CONFIG_ERROR)


def test_the_error_names_stack_step_and_code_and_keeps_both_streams() -> None:
    error = EngineError("dev", "preview", "Previewing update (dev):\n" + CONFIG_ERROR, 255, said=CONFIG_ERROR)
    assert error.headline == "stack dev: preview failed (exit 255)"
    assert str(error).startswith("stack dev: preview failed (exit 255):\nPreviewing update (dev):")
    assert str(error).endswith("goapp:replicas: must be at least 1")


def test_the_command_prints_what_the_engine_said_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout streamed while the step ran; the program's own error is on stderr and must not be swallowed."""

    def failing_run(action: str, stack: str, *_: Any) -> None:
        raise EngineError(stack, "preview", "Previewing update (dev):\n" + CONFIG_ERROR, 255, said=CONFIG_ERROR)

    monkeypatch.setattr(stack_command, "bootstrap", lambda **_: object())
    monkeypatch.setattr(stack_command, "run", failing_run)
    assert stack_command.main(["preview", "dev"]) == 1
    printed = capsys.readouterr().err
    assert printed == f"stack: stack dev: preview failed (exit 255):\n{CONFIG_ERROR}\n"
