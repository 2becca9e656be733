"""The Pulumi engine this project runs: the CLI, language host and plugins tools/pulumi/bootstrap.sh builds.

The bootstrap (bash: it builds Go modules) prints `export NAME="value"` lines; this turns them into the
environment every engine call gets, and into the CLI's install root for the Automation API.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ops.project import PULUMI_BOOTSTRAP, REPO_ROOT

_EXPORT = re.compile(r'^export ([A-Z_][A-Z0-9_]*)="?(.*?)"?$', re.M)


class ToolchainError(RuntimeError):
    """The engine could not be built or found."""


@dataclass(frozen=True)
class Toolchain:
    env: Mapping[str, str]
    """PATH with the CLI and the virtualenv first, PULUMI_HOME, no plugin downloads, no update checks."""

    @property
    def cli_root(self) -> Path:
        """The directory holding bin/pulumi, as the Automation API's PulumiCommand wants it."""
        for entry in self.env["PATH"].split(os.pathsep):
            if (Path(entry) / "pulumi").is_file():
                return Path(entry).parent
        raise ToolchainError("no pulumi on the toolchain's PATH")


def parse_exports(printed: str, base_path: str) -> dict[str, str]:
    """`export` lines of the bootstrap as a mapping; `$PATH` in a value stands for `base_path`."""
    return {name: value.replace("$PATH", base_path) for name, value in _EXPORT.findall(printed)}


def bootstrap(build: bool = True, environ: Mapping[str, str] | None = None) -> Toolchain:
    """Build what is missing (or, with build=False, only check) and return the engine's environment.

    The program runs in the project's virtualenv, as the language host is told by PATH and VIRTUAL_ENV.
    """
    base = dict(os.environ if environ is None else environ)
    script = [str(PULUMI_BOOTSTRAP), *([] if build else ["--print-env"])]
    done = subprocess.run(script, capture_output=True, text=True, env=base, check=False)
    if done.returncode != 0:
        raise ToolchainError(f"tools/pulumi/bootstrap.sh failed:\n{done.stderr[-3000:]}")
    env = {**base, **parse_exports(done.stdout, base.get("PATH", ""))}
    venv = REPO_ROOT / ".venv"
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", "")
    return Toolchain(env=env)
