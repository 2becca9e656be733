"""A fix for how pulumi-docker 3.x runs the Docker CLI, applied once when the image component loads.

pulumi-docker 3.x reads a command's output inside `while process.returncode is None:`. A command that
exits before that loop first checks — `docker image inspect` right after a build, on Python 3.11's
child watchers — is never read, so its output is empty and the build fails with "No digest available
for image …" although the image exists. This runner keeps the library's contract (same arguments,
stderr reported as a warning or an error, stdout returned) and always reads the output to the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence

import pulumi
from pulumi_docker import docker as docker_cli


async def run_command(
    cmd_name: str,
    args: Sequence[str],
    log_resource: pulumi.Resource | None,
    report_full_command_line: bool,
    report_error_as_warning: bool,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> docker_cli.CommandResult:
    environ = {**os.environ, **env} if env is not None else None
    process = await asyncio.create_subprocess_exec(
        cmd_name,
        *args,
        env=environ,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    outs, errs = await process.communicate(input=stdin.encode() if stdin is not None else None)
    code = process.returncode or 0
    stderr = errs.decode(errors="replace").rstrip()
    if stderr:
        report = pulumi.log.error if code and not report_error_as_warning else pulumi.log.warn
        report(stderr, log_resource)
    return docker_cli.CommandResult(code, outs.decode(errors="replace").rstrip())  # type: ignore[no-untyped-call]


def install() -> None:
    """Route every Docker CLI call of pulumi-docker 3.x through `run_command` (idempotent)."""
    docker_cli.run_command_that_can_fail = run_command
