"""Drives the real Pulumi CLI (built by scripts/bootstrap-pulumi.sh) for the engine tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = REPO_ROOT / "scripts"
RENDER_DIGEST = "sha256:" + "5e" * 32
"""Stands for the digest CI pushed; render mode only writes it into the manifests."""
UPGRADE_FROM = "723fb8627be015a0afec445e91736ad23469859b"
"""The last commit whose program registered one goapp:workload:Workload with every object under it."""
FORBIDDEN_STEPS = frozenset(
    {"delete", "replace", "create-replacement", "delete-replaced", "discard", "discard-replaced"}
)
"""Steps an upgrade of an existing stack must never plan."""


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


def bootstrap_env() -> dict[str, str]:
    """The environment the bootstrap script prints (PATH, PULUMI_HOME, no plugin downloads)."""
    printed = subprocess.run(
        [str(SCRIPTS / "bootstrap-pulumi.sh"), "--print-env"], check=True, capture_output=True, text=True
    ).stdout
    env = dict(os.environ)
    for name, value in re.findall(r'^export ([A-Z_]+)="?(.*?)"?$', printed, flags=re.M):
        env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    env["PULUMI_CONFIG_PASSPHRASE"] = env.get("PULUMI_CONFIG_PASSPHRASE", "")
    # The program runs in the project's virtualenv, as scripts/stack.sh arranges.
    env["VIRTUAL_ENV"] = str(REPO_ROOT / ".venv")
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}:{env['PATH']}"
    for name in ("GOAPP_RENDER_DIR", "GOAPP_IMAGE_DIGEST", "PULUMI_BACKEND_URL", "PULUMI_CONFIG"):
        env.pop(name, None)
    return env


@dataclass
class Result:
    code: int
    out: str

    def check(self) -> Result:
        assert self.code == 0, self.out[-6000:]
        return self


class Workspace:
    """One stack in a private copy of the project: its own stacks/ folder and file backend.

    The program itself is the repository's (infra/ and .venv are linked), so the real code runs,
    while stack files and state never touch the repository.
    """

    def __init__(self, root: Path, stack: str, env: dict[str, str], program: Path = REPO_ROOT) -> None:
        self.root = root
        self.stack = stack
        self.env = env
        self.backend = root / "state"
        self.backend.mkdir(parents=True, exist_ok=True)
        (root / "stacks").mkdir(exist_ok=True)
        (root / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
        (root / ".venv").symlink_to(REPO_ROOT / ".venv")
        self.use_program(program)
        self.config_file = root / "stacks" / f"Pulumi.{stack}.yaml"

    def use_program(self, program: Path) -> None:
        """Run the program (its infra/ package) of a checkout, e.g. an earlier version's, from now on.

        A copy, not a link: the language host runs the program in its resolved directory, and the program finds
        its project (Pulumi.yaml, the stack files) from there. The current program's package is the installed
        one (the repository's, editable); an earlier version's __main__ puts its own copy first on sys.path.
        """
        target = self.root / "infra"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(program / "infra", target, ignore=shutil.ignore_patterns("__pycache__"))

    def pulumi(self, *args: str, extra_env: dict[str, str] | None = None, timeout: int = 900) -> Result:
        env = {**self.env, "PULUMI_BACKEND_URL": f"file://{self.backend}", **(extra_env or {})}
        done = subprocess.run(
            ["pulumi", *args, "--stack", self.stack, "--non-interactive"],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout + done.stderr)

    def init(self, config: dict[str, Any]) -> None:
        self.config_file.write_text(yaml.safe_dump({"config": config}))
        self.pulumi("stack", "init", "--secrets-provider", "passphrase").check()

    def set_secret(self, path: str, value: str) -> None:
        self.pulumi("config", "set", "--secret", "--path", path, value).check()

    def set_config(self, path: str, value: str) -> None:
        self.pulumi("config", "set", "--path", path, value).check()

    def run(self, command: str, *args: str, extra_env: dict[str, str] | None = None) -> Result:
        flags = ["--yes", "--skip-preview"] if command in ("up", "destroy") else []
        return self.pulumi(command, *flags, *args, extra_env=extra_env)

    def replace_config(self, config: dict[str, Any]) -> None:
        """New config for the existing stack, keeping the file's secrets provider state (its salt)."""
        document = yaml.safe_load(self.config_file.read_text())
        document["config"] = config
        self.config_file.write_text(yaml.safe_dump(document))

    def preview_steps(self, *args: str, extra_env: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """What `pulumi preview --json` plans: every step that is not `same`, with its op and URN."""
        out = self.pulumi("preview", "--json", *args, extra_env=extra_env).check().out
        document = json.loads(out[out.index("{") :])
        steps: list[dict[str, Any]] = document.get("steps") or []
        return steps

    def state(self) -> dict[str, Any]:
        exported = self.pulumi("stack", "export").check().out
        document: dict[str, Any] = json.loads(exported)
        return document

    def resources(self) -> list[dict[str, Any]]:
        resources: list[dict[str, Any]] = self.state().get("deployment", {}).get("resources") or []
        return resources

    def state_file_text(self) -> str:
        return "\n".join(p.read_text() for p in self.backend.rglob("*.json") if p.is_file())


def stack_script(action: str, stack: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """The Makefile's path: scripts/stack.sh, exactly as `make render STACK=…` runs it."""
    done = subprocess.run(
        [str(SCRIPTS / "stack.sh"), action, stack, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Result(done.returncode, done.stdout + done.stderr)
