"""`make preview|up|down|render|render-all` and `make exec`: one stack through the engine.

    python -m ops.stack preview STACK [--refresh] [--expect-no-changes] [--policy-pack DIR --policy-pack-config F]
    python -m ops.stack up STACK [--refresh]              builds, pushes and deploys
    python -m ops.stack down STACK                        destroys
    python -m ops.stack render STACK                      every object as YAML under dist/STACK/ (needs a digest)
    python -m ops.stack render-preview STACK [--expect-no-changes] [--policy-pack …]
    python -m ops.stack render-all                        every stack, with the review digest and stamps
    python -m ops.stack exec STACK -- ARGS…               any pulumi command against the stack

State lives in the local file backend under .pulumi-state/ unless PULUMI_BACKEND_URL says otherwise; render
mode keeps its own under .pulumi-state/render/, so a rendering never touches a real deployment's state. Stack
secrets use the passphrase provider; PULUMI_CONFIG_PASSPHRASE defaults to empty for the example stacks (the
program refuses `up` of any but throwaway stacks under it, see the README).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ops import project
from ops.engine import Engine, EngineError
from ops.toolchain import Toolchain, ToolchainError, bootstrap

RENDER_ACTIONS = ("render", "render-preview", "render-all")


@dataclass(frozen=True)
class Target:
    """Where one action's state and output go, and what the program is told through its environment."""

    backend_url: str
    env: dict[str, str]
    render_dir: Path | None = None


def target(action: str, stack: str, environ: Mapping[str, str]) -> Target:
    """Pure: the backend and program environment of an action (render mode: its own state, dist/STACK/)."""
    stamps = {
        "GOAPP_VERSION": environ.get("GOAPP_VERSION") or git("describe", "--tags", "--always", "--dirty") or "dev",
        "GOAPP_COMMIT": environ.get("GOAPP_COMMIT") or git("rev-parse", "HEAD") or "unknown",
    }
    if action in RENDER_ACTIONS:
        render_dir = project.DIST_DIR / stack
        env = {**stamps, "GOAPP_RENDER_DIR": str(render_dir)}
        if action == "render-all":
            env.update(project.REVIEW_STAMPS)
        return Target(f"file://{project.STATE_DIR / 'render'}", env, render_dir)
    return Target(environ.get("PULUMI_BACKEND_URL") or f"file://{project.STATE_DIR}", stamps)


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(project.REPO_ROOT), *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def stack_config(stack: str) -> dict[str, object]:
    document = yaml.safe_load((project.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    config: dict[str, object] = document.get("config") or {}
    return config


def needs_stand_ins(stack: str) -> bool:
    """The stack builds on this machine's base-image stand-ins (no image can be pulled here)."""
    image = stack_config(stack).get("goapp:image")
    bases = image.get("baseImages", {}) if isinstance(image, dict) else {}
    return any(str(value).startswith("goapp-local/") for value in (bases or {}).values())


def prepare_build(stack: str, env: Mapping[str, str]) -> None:
    """A build needs Docker, and here the base-image stand-ins (both bash bootstraps)."""
    run_script(project.DOCKER_UP)
    if needs_stand_ins(stack):
        run_script(project.BASE_IMAGES, quiet=True)


def run_script(script: Path, quiet: bool = False) -> None:
    done = subprocess.run([str(script)], stdout=subprocess.DEVNULL if quiet else None, check=False)
    if done.returncode != 0:
        raise SystemExit(f"stack: {script.relative_to(project.REPO_ROOT)} failed (exit {done.returncode})")


def echo(line: str) -> None:
    print(line, flush=True)


def run(action: str, stack: str, options: argparse.Namespace, toolchain: Toolchain, environ: Mapping[str, str]) -> int:
    where = target(action, stack, environ)
    if where.backend_url.startswith("file://"):
        Path(where.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    engine = Engine(project.REPO_ROOT, where.backend_url, toolchain, env=where.env)
    builds = action in ("preview", "up") and not environ.get("GOAPP_IMAGE_DIGEST")
    if builds:
        prepare_build(stack, environ)
    if action in ("render", "render-all"):
        # A rendering always starts from empty state, so dist/STACK/ holds every object, not only what changed.
        engine.remove(stack)
        if where.render_dir is not None:
            shutil.rmtree(where.render_dir, ignore_errors=True)
    if action in ("preview", "render-preview"):
        engine.preview(
            stack,
            on_output=echo,
            diff=True,
            expect_no_changes=options.expect_no_changes or None,
            refresh=options.refresh or None,
            policy_packs=[options.policy_pack] if options.policy_pack else None,
            policy_pack_configs=options.policy_pack_config or None,
        )
    elif action in ("up", "render", "render-all"):
        engine.up(stack, on_output=echo, refresh=options.refresh or None)
    elif action == "down":
        engine.destroy(stack, on_output=echo)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in args:
        args, passthrough = args[: args.index("--")], args[args.index("--") + 1 :]
    stacks = project.stacks()
    parser = argparse.ArgumentParser(
        prog="python -m ops.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["preview", "up", "down", "render", "render-preview", "render-all", "exec"])
    parser.add_argument("stack", nargs="?", default="local", help=f"one of {', '.join(stacks)} (default local)")
    parser.add_argument("--refresh", action="store_true", help="refresh the state from the cluster first")
    parser.add_argument("--expect-no-changes", action="store_true", help="fail if the preview plans any change")
    parser.add_argument("--policy-pack", help="run this policy pack during the preview")
    parser.add_argument("--policy-pack-config", action="append", help="the policy pack's config file")
    options = parser.parse_args(args)
    if options.stack not in stacks:
        parser.error(f"unknown stack {options.stack!r}; stacks/ has: {', '.join(stacks)}")
    environ = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")}
    try:
        toolchain = bootstrap(environ=environ)
        if options.action == "exec":
            where = target("exec", options.stack, environ)
            engine = Engine(project.REPO_ROOT, where.backend_url, toolchain, env=where.env)
            engine.stack(options.stack)
            return engine.cli(options.stack, *passthrough).returncode
        for stack in stacks if options.action == "render-all" else [options.stack]:
            run(options.action, stack, options, toolchain, environ)
    except EngineError as error:
        # stdout has streamed already; stderr, where the program and the engine say what went wrong, has not.
        print(f"stack: {error.headline}" + (f":\n{error.said}" if error.said else ""), file=sys.stderr)
        return 1
    except ToolchainError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
