"""`make up`: deploy a stack (default local) and prove, from the client side, that it answers.

For the local stack pointed at this machine's cluster (the kubeconfig `make cluster-up` writes), the cluster and
its registry are started first (tools/k8s/cluster.sh supervises them). Pointed at another cluster (kind, minikube,
a cloud), the stack is deployed there as it is. Then `/readyz` on the stack's URL must answer, the notes API
must accept the stack's NOTES_TOKEN, and a sample request is printed that reads the token from the stack's
encrypted config instead of showing it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ops import project
from ops.engine import Engine, EngineError
from ops.stack import echo, prepare_build, stack_config, target
from ops.toolchain import ToolchainError, bootstrap

TOKEN_KEY = "goapp:secretEnv.NOTES_TOKEN"


def local_kubeconfig() -> Path:
    return Path(os.environ.get("GOAPP_CACHE") or Path.home() / ".cache" / "goapp") / "cluster" / "kubeconfig"


def uses_local_cluster(stack: str) -> bool:
    target_cluster = stack_config(stack).get("goapp:kubernetes")
    kubeconfig = target_cluster.get("kubeconfig") if isinstance(target_cluster, dict) else None
    return bool(kubeconfig) and Path(os.path.expanduser(str(kubeconfig))) == local_kubeconfig()


def status(url: str, token: str | None = None, timeout: float = 2) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def wait_ready(url: str, seconds: int = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if status(f"{url}/readyz") == 200:
            return True
        time.sleep(1)
    return False


def sample(stack: str, url: str) -> str:
    token_command = f"python -m ops.stack exec {stack} -- config get --path '{TOKEN_KEY}'"
    return "\n".join(
        [
            "",
            f"goapp ({stack}) is ready at {url}",
            f"  curl {url}/hello",
            f"  TOKEN=$(.venv/bin/{token_command})",
            f"  curl -X PUT -H \"Authorization: Bearer $TOKEN\" --data 'first note' {url}/notes/first",
            f'  curl -H "Authorization: Bearer $TOKEN" {url}/notes/first',
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.up", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stack", nargs="?", default="local", choices=project.stacks())
    stack = parser.parse_args(argv).stack
    environ = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")}
    if uses_local_cluster(stack):
        done = subprocess.run([str(project.CLUSTER_SH), "up"], check=False)
        if done.returncode != 0:
            print(f"up: tools/k8s/cluster.sh up failed (exit {done.returncode})", file=sys.stderr)
            return 1
    try:
        toolchain = bootstrap(environ=environ)
        where = target("up", stack, environ)
        Path(where.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        engine = Engine(project.REPO_ROOT, where.backend_url, toolchain, env=where.env)
        if not environ.get("GOAPP_IMAGE_DIGEST"):
            prepare_build(stack, environ)
        # --refresh: the local cluster may have been deleted and recreated since the last deployment.
        engine.up(stack, on_output=echo, refresh=True)
        outputs = engine.outputs(stack)
        url = outputs.get("url")
        if not url:
            print(f"Deployed stack {stack}. It has no goapp:url; outputs: {outputs}", file=sys.stderr)
            return 0
        # pulumi up waited for the Deployment's readiness; this proves the path from the client side.
        if not wait_ready(url):
            print(f"up: deployed, but {url}/readyz did not answer 200 within 60s", file=sys.stderr)
            return 1
        try:
            token = engine.get_config(stack, TOKEN_KEY)
        except EngineError:
            print(f"up: the stack has no {TOKEN_KEY}: the notes API answers 401 to everything", file=sys.stderr)
        else:
            code = status(f"{url}/notes?limit=1", token, timeout=5)
            if code != 200:
                print(f"up: {url}/notes answered {code} to the stack's NOTES_TOKEN", file=sys.stderr)
                return 1
        print(sample(stack, url))
        print(urllib.request.urlopen(f"{url}/hello", timeout=2).read().decode())
    except EngineError as error:
        print(f"up: {error.headline}", file=sys.stderr)
        return 1
    except ToolchainError as error:
        print(f"up: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
