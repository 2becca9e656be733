"""The engine and end-to-end tests' view of the real Pulumi engine: `ops.engine` over a private project copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

from ops import project
from ops.engine import FORBIDDEN_STEPS, Engine, EngineError, resources
from ops.toolchain import Toolchain, bootstrap

REPO_ROOT = project.REPO_ROOT
RENDER_DIGEST = project.REVIEW_DIGEST
UPGRADE_FROM = "723fb8627be015a0afec445e91736ad23469859b"
"""The last commit whose program registered one goapp:workload:Workload with every object under it."""

__all__ = ["FORBIDDEN_STEPS", "RENDER_DIGEST", "REPO_ROOT", "UPGRADE_FROM", "Workspace", "toolchain"]


def toolchain() -> Toolchain:
    """The engine tools/pulumi/bootstrap.sh built (`make engine-test` and `make e2e` bootstrap first)."""
    return bootstrap(build=False)


def checkout(commit: str, destination: Path, *paths: str) -> Path:
    """The files of `paths` at `commit`, written under `destination` (the repository's history, no network)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, *paths],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination


@dataclass
class Result:
    code: int
    out: str

    def check(self) -> Result:
        assert self.code == 0, self.out[-6000:]
        return self


class Workspace:
    """One stack in a private copy of the project: its own stacks/ folder and file backend.

    The program is the repository's (the installed `infra` package, with infra/__main__.py copied beside a
    copy of Pulumi.yaml), so the real code runs, while stack files and state never touch the repository.
    """

    def __init__(self, root: Path, stack: str, tools: Toolchain, program: Path = REPO_ROOT) -> None:
        self.root = root
        self.stack = stack
        self.backend = root / "state"
        self.backend.mkdir(parents=True, exist_ok=True)
        (root / "stacks").mkdir(exist_ok=True)
        (root / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
        (root / ".venv").symlink_to(REPO_ROOT / ".venv")
        self.use_program(program)
        self.config_file = root / "stacks" / f"Pulumi.{stack}.yaml"
        self.engine = Engine(root, f"file://{self.backend}", tools)

    def use_program(self, program: Path) -> None:
        """Run the program (its infra/ package) of a checkout, e.g. an earlier version's, from now on.

        A copy, not a link: the language host runs the program in its resolved directory, and the program finds
        its project (Pulumi.yaml, the stack files) from there. The current program's package is the installed
        one (the repository's, editable); an earlier version's __main__ puts its own copy first on sys.path.
        """
        target = self.root / "infra"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(program / "infra", target, ignore=shutil.ignore_patterns("__pycache__"))

    def init(self, config: Mapping[str, Any] | None = None) -> None:
        """Create the stack; from `config` (stack-file form), or from the stack file already written."""
        if config is not None:
            self.config_file.write_text(yaml.safe_dump({"config": dict(config)}))
        self.engine.stack(self.stack)

    def set_secret(self, path: str, value: str) -> None:
        self.engine.set_config(self.stack, path, value, secret=True)

    def set_config(self, path: str, value: str) -> None:
        self.engine.set_config(self.stack, path, value)

    def replace_config(self, config: Mapping[str, Any]) -> None:
        """New config for the existing stack, keeping the file's secrets provider state (its salt)."""
        document = yaml.safe_load(self.config_file.read_text())
        document["config"] = dict(config)
        self.config_file.write_text(yaml.safe_dump(document))

    def run(self, command: str, *, env: Mapping[str, str] | None = None, expect_no_changes: bool = False) -> Result:
        """`up`, `preview` or `destroy` through the engine; a failure is a Result with the engine's output."""
        echo = EchoToStderr()
        try:
            if command == "up":
                out = self.engine.up(self.stack, env=env, on_output=echo).stdout
            elif command == "preview":
                out = self.engine.preview(
                    self.stack, env=env, on_output=echo, expect_no_changes=expect_no_changes or None
                ).out
            elif command == "destroy":
                out = self.engine.destroy(self.stack, env=env, on_output=echo).stdout
            else:
                raise ValueError(f"unknown command {command!r}: up, preview or destroy")
        except EngineError as error:
            return Result(error.code or 1, f"{error.headline}\n{error.out}")
        return Result(0, out)

    def preview_steps(self, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """Every step a preview plans that is not `same`, as (op, URN)."""
        plan = self.engine.preview(self.stack, env=env)
        return [(op, urn) for op, urn in plan.steps if op != "same"]

    def state(self) -> dict[str, Any]:
        return self.engine.export(self.stack)

    def resources(self) -> list[dict[str, Any]]:
        return resources(self.state())

    def state_file_text(self) -> str:
        return "\n".join(p.read_text() for p in self.backend.rglob("*.json") if p.is_file())


class EchoToStderr:
    """Streams the engine's progress into the test's captured output (shown when a test fails)."""

    def __call__(self, line: str) -> None:
        print(line, file=sys.stderr)


def stack_command(action: str, stack: str, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """The Makefile's path: `python -m ops.stack`, exactly as `make render STACK=…` runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "ops.stack", action, stack, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Result(done.returncode, done.stdout + done.stderr)
