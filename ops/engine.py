"""The one way this project drives the Pulumi engine: the Automation API over a project directory.

`make preview|up|down|render`, `make up`, the gates, the engine and end-to-end tests and the benchmarks all go
through `Engine`: a `LocalWorkspace` over the project (the repository, or a test's copy of it) whose
`PulumiCommand` is the CLI tools/pulumi/bootstrap.sh built, with the project's virtualenv and plugin home.
Every failure is an `EngineError` that names the stack and the step, with the end of the CLI's output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from ops.toolchain import Toolchain

OnOutput = Callable[[str], None]

FORBIDDEN_STEPS = frozenset(
    {"delete", "replace", "create-replacement", "delete-replaced", "discard", "discard-replaced"}
)
"""Steps an upgrade of an existing stack must never plan."""


class EngineError(RuntimeError):
    """A step of the engine failed. `headline` names the stack, the step and the exit code; the message adds the
    end of the CLI's output, where the engine says what went wrong; `out` holds all of it and `said` the CLI's
    stderr alone (the program's own errors, which a caller streaming only stdout has not shown yet)."""

    def __init__(self, stack: str, step: str, out: str, code: int | None = None, said: str = "") -> None:
        self.stack, self.step, self.out, self.code, self.said = stack, step, out, code, said
        self.headline = f"stack {stack}: {step} failed" + (f" (exit {code})" if code is not None else "")
        tail = "\n".join(out.strip().splitlines()[-40:])
        super().__init__(f"{self.headline}:\n{tail}" if tail else self.headline)


@dataclass(frozen=True)
class Plan:
    """What a preview found: every step by operation and URN, and the CLI's own output."""

    steps: list[tuple[str, str]]
    out: str

    def ops(self, *wanted: str) -> list[tuple[str, str]]:
        return [(op, urn) for op, urn in self.steps if op in wanted]


@dataclass
class Engine:
    """The engine for one project directory and state backend. `env` adds variables for the program (render
    mode, a prebuilt digest, build stamps) to the toolchain's."""

    project_dir: Path
    backend_url: str
    toolchain: Toolchain
    env: Mapping[str, str] = field(default_factory=dict)

    def _options(self, env: Mapping[str, str] | None = None) -> auto.LocalWorkspaceOptions:
        variables = {**self.toolchain.env, **self.env, **(env or {}), "PULUMI_BACKEND_URL": self.backend_url}
        command = auto.PulumiCommand(root=str(self.toolchain.cli_root), skip_version_check=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.project_dir),
            pulumi_home=variables.get("PULUMI_HOME"),
            env_vars=variables,
            secrets_provider="passphrase",
            pulumi_command=command,
        )

    def stack(self, name: str, env: Mapping[str, str] | None = None) -> auto.Stack:
        with self._step(name, "select"):
            return auto.create_or_select_stack(name, work_dir=str(self.project_dir), opts=self._options(env))

    @contextmanager
    def _step(self, stack: str, step: str) -> Iterator[None]:
        try:
            yield
        except auto.errors.CommandError as error:
            code, stdout, stderr = _command_result(str(error))
            out = "\n".join(part for part in (stdout, stderr) if part)
            raise EngineError(stack, step, out, code, said=stderr) from None

    def preview(
        self, stack: str, *, env: Mapping[str, str] | None = None, on_output: OnOutput | None = None, **options: Any
    ) -> Plan:
        """`pulumi preview`; `options` are the Automation API's (diff, expect_no_changes, refresh, policy_packs…)."""
        steps: list[tuple[str, str]] = []

        def record(event: auto.EngineEvent) -> None:
            if event.resource_pre_event is not None:
                metadata = event.resource_pre_event.metadata
                steps.append((str(metadata.op.value), metadata.urn))

        handle = self.stack(stack, env)
        with self._step(stack, "preview"):
            result = handle.preview(on_output=on_output, on_event=record, color="never", **options)
        return Plan(steps=steps, out=result.stdout)

    def up(
        self, stack: str, *, env: Mapping[str, str] | None = None, on_output: OnOutput | None = None, **options: Any
    ) -> auto.UpResult:
        handle = self.stack(stack, env)
        with self._step(stack, "up"):
            return handle.up(on_output=on_output, color="never", **options)

    def destroy(
        self, stack: str, *, env: Mapping[str, str] | None = None, on_output: OnOutput | None = None, **options: Any
    ) -> auto.DestroyResult:
        handle = self.stack(stack, env)
        with self._step(stack, "destroy"):
            return handle.destroy(on_output=on_output, color="never", **options)

    def remove(self, stack: str) -> None:
        """Forget the stack's state (its config file stays), e.g. so a render starts from nothing."""
        options = self._options()
        workspace = auto.LocalWorkspace(
            work_dir=options.work_dir,
            pulumi_home=options.pulumi_home,
            env_vars=options.env_vars,
            secrets_provider=options.secrets_provider,
            pulumi_command=options.pulumi_command,
        )
        with self._step(stack, "remove"):
            try:
                workspace.remove_stack(stack, force=True, preserve_config=True)
            except auto.errors.StackNotFoundError:
                return

    def set_config(self, stack: str, key: str, value: str, *, secret: bool = False, path: bool = True) -> None:
        handle = self.stack(stack)
        with self._step(stack, f"config set {key}"):
            handle.set_config(key, auto.ConfigValue(value=value, secret=secret), path=path)

    def get_config(self, stack: str, key: str, *, path: bool = True) -> str:
        handle = self.stack(stack)
        with self._step(stack, f"config get {key}"):
            return handle.get_config(key, path=path).value

    def outputs(self, stack: str) -> dict[str, Any]:
        handle = self.stack(stack)
        with self._step(stack, "outputs"):
            return {key: value.value for key, value in handle.outputs().items()}

    def export(self, stack: str) -> dict[str, Any]:
        handle = self.stack(stack)
        with self._step(stack, "export"):
            deployment = dict(handle.export_stack().deployment or {})
        return deployment

    def cli(self, stack: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Any other `pulumi` command against the stack, with the engine's environment (`make exec`)."""
        options = self._options(env)
        command = [str(self.toolchain.cli_root / "bin" / "pulumi"), *args, "--stack", stack]
        return subprocess.run(command, cwd=self.project_dir, env=dict(options.env_vars or {}), check=False, text=True)


def _command_result(message: str) -> tuple[int | None, str, str]:
    """The exit code, stdout and stderr in an Automation API CommandError's message."""
    head, _, rest = message.partition(" stdout: ")
    stdout, _, stderr = rest.partition("\n stderr: ")
    code = None
    for line in head.splitlines():
        if line.strip().startswith("code:"):
            code = int(line.split(":", 1)[1]) if line.split(":", 1)[1].strip().lstrip("-").isdigit() else None
    return code, stdout.strip(), stderr.strip()


def resources(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = deployment.get("resources") or []
    return found
