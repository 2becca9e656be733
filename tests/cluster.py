"""The end-to-end tests' view of this machine's cluster: kubectl, waiting, HTTP on loopback, a deployed stack.

Every module that uses the cluster starts it through `running_cluster()` and stops it afterwards, also after a
failure, so modules can run alone or in any order. A `Deployed` stack is the committed local stack (or another
config) in its own namespace, NodePort and private state backend, set up with known secrets.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from engine import REPO_ROOT, Workspace, toolchain
from ops.project import CLUSTER_SH, DOCKER_UP
from traffic import target

T = TypeVar("T")
NOTES_TOKEN = "e2e-notes-token-0f5d7c1e9a2b4c6d"
ROLLOUT_KEY = "e2e-rollout-key-3a9c1f0b7d5e2a4c6e8f"
GATEWAY_PORT = 8000
"""Traefik's `web` entryPoint on 127.0.0.1, the loopback way in that the Gateway `traefik/local` listens on."""
PROMETHEUS = "http://127.0.0.1:9090"
REGISTRY = "127.0.0.1:5000"
"""The cluster's image registry on loopback (tools/k8s)."""


def sh(*args: str, timeout: int = 900, cwd: Path = REPO_ROOT, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def eventually(check: Callable[[], T | Literal[False] | None], what: str, timeout: float = 180, every: float = 1) -> T:
    """The first truthy result of `check` within `timeout` seconds; errors count as not yet. (A check may answer
    `cond and value`: its False or None is "not yet", so the result is typed as the value.)"""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (OSError, AssertionError, KeyError, ValueError) as error:
            last = error
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def http(
    method: str, url: str, body: bytes | None = None, token: str | None = NOTES_TOKEN, timeout: float = 5
) -> tuple[int, bytes]:
    """One request; a `*.test` host is sent to 127.0.0.1 with its name as the Host header (tests/traffic.py)."""
    host, port, host_header, path = target(url)
    query = urllib.parse.urlsplit(url).query
    request = urllib.request.Request(
        f"http://{host}:{port}{path}{'?' + query if query else ''}", data=body, method=method
    )
    if host_header is not None:
        request.add_header("Host", host_header)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def message(url: str) -> str:
    """What /hello answers at a stack's URL."""
    status, body = http("GET", f"{url}/hello", token=None)
    assert status == 200, (status, body)
    text: str = json.loads(body)["message"]
    return text


def bin_dirs() -> dict[str, Path]:
    """The directories tools/k8s/build.sh installed the cluster's binaries in, by name (KUBE_BIN, NODE_BIN, …)."""
    printed = sh(str(REPO_ROOT / "tools" / "k8s" / "build.sh"), "print-bin-dirs")
    return {name: Path(value.strip('"')) for name, value in re.findall(r"^([A-Z_]+)=(.+)$", printed, flags=re.M)}


@dataclass(frozen=True)
class Kubectl:
    """kubectl with the cluster's admin kubeconfig; a failure is an assertion naming the command."""

    binary: str
    kubeconfig: str

    @classmethod
    def of_local_cluster(cls) -> Kubectl:
        kubeconfig = sh(str(CLUSTER_SH), "kubeconfig-path").strip()
        return cls(str(bin_dirs()["KUBE_BIN"] / "kubectl"), kubeconfig)

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: int = 600
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


class Cluster:
    def __init__(self) -> None:
        self.kubectl = Kubectl.of_local_cluster()
        self.kubeconfig = self.kubectl.kubeconfig

    def json(self, *args: str) -> Any:
        return self.kubectl.json(*args)

    def apply(self, documents: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(documents))

    def pods(self, namespace: str, selector: str, terminating: bool = False) -> list[dict[str, Any]]:
        """The pods of a selector; terminating ones only when asked."""
        items: list[dict[str, Any]] = self.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        return [p for p in items if terminating or p["metadata"].get("deletionTimestamp") is None]


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """The local cluster, started for a module and stopped after it; Docker too, which every deployed stack's
    image build needs (a module run alone must not depend on an earlier one having started it)."""
    sh(str(DOCKER_UP))
    sh(str(CLUSTER_SH), "up")
    try:
        yield Cluster()
    finally:
        subprocess.run([str(CLUSTER_SH), "stop"], timeout=300, check=False)


def local_config(
    cluster: Cluster, namespace: str, node_port: int, stacks: Path = REPO_ROOT / "stacks"
) -> dict[str, Any]:
    """The local stack of a checkout (stacks/), in its own namespace and NodePort, on this cluster. Through the
    ingress controller when the checkout's stack has a way in, under its own host name `<namespace>.test` (so
    several test stacks share the Gateway); on its NodePort otherwise (earlier versions)."""
    config: dict[str, Any] = yaml.safe_load((stacks / "Pulumi.local.yaml").read_text())["config"]
    config["goapp:namespace"] = namespace
    config["goapp:service"]["nodePort"] = node_port
    if "goapp:exposure" in config:
        config["goapp:url"] = f"http://{namespace}.test:{GATEWAY_PORT}"
    else:
        config["goapp:url"] = f"http://127.0.0.1:{node_port}"
    config["goapp:kubernetes"]["kubeconfig"] = cluster.kubeconfig
    return config


@dataclass
class Deployed:
    workspace: Workspace
    cluster: Cluster
    namespace: str
    url: str

    @property
    def selector(self) -> str:
        return "app.kubernetes.io/name=goapp,app.kubernetes.io/instance=goapp-" + self.workspace.stack

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(self.workspace.config_file.read_text())["config"]
        return config

    def change(self, update: Callable[[dict[str, Any]], None]) -> None:
        config = self.config()
        update(config)
        self.workspace.replace_config(config)

    def up(self, env: Mapping[str, str] | None = None) -> None:
        self.workspace.run("up", env=env).check()

    def pods(self, terminating: bool = False) -> list[dict[str, Any]]:
        return self.cluster.pods(self.namespace, self.selector, terminating)


def init_stack(workspace: Workspace, config: dict[str, Any]) -> None:
    """A new stack from `config`: its secrets are set again under the workspace's own passphrase salt (the
    committed ciphertexts belong to the committed stack file's salt), the notes token to one the tests know."""
    config = dict(config)
    secrets = {key: config.pop(key) for key in ("goapp:secretEnv", "goapp:rolloutKey") if key in config}
    workspace.init(config)
    if "goapp:secretEnv" in secrets:
        workspace.set_secret("goapp:secretEnv.NOTES_TOKEN", NOTES_TOKEN)
    if "goapp:rolloutKey" in secrets:
        workspace.set_secret("goapp:rolloutKey", ROLLOUT_KEY)


@contextmanager
def deployed(root: Path, stack: str, cluster: Cluster, config: dict[str, Any]) -> Iterator[Deployed]:
    """`pulumi up` of `config` as stack `stack` (instance goapp-<stack>), destroyed and its namespace deleted after."""
    workspace = Workspace(root / "project", stack, toolchain())
    init_stack(workspace, config)
    namespace = str(config["goapp:namespace"])
    try:
        workspace.run("up").check()
        yield Deployed(workspace, cluster, namespace, str(config["goapp:url"]))
    finally:
        workspace.run("destroy")
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", check=False)


def smoke_image(tmp: Path, purpose: str = "e2e") -> str:
    """tools/k8s/smoke built on the host, packed FROM scratch and pushed to the local registry (no image can be
    pulled here); a tag of its own per call (`purpose` and a random suffix), so modules never race on one."""
    sh(str(DOCKER_UP))
    smoke = REPO_ROOT / "tools" / "k8s" / "smoke"
    sh("go", "build", "-trimpath", "-o", str(tmp / "smoke"), ".", cwd=smoke, env={**os.environ, "CGO_ENABLED": "0"})
    (tmp / "Dockerfile").write_text((smoke / "Dockerfile").read_text())
    image = f"{REGISTRY}/goapp-smoke:{purpose}-{secrets.token_hex(4)}"
    sh("docker", "build", "-q", "-t", image, str(tmp), env={**os.environ, "DOCKER_BUILDKIT": "0"})
    sh("docker", "push", "-q", image)
    return image


def restricted_job(name: str, namespace: str, image: str, args: list[str]) -> dict[str, Any]:
    """A Job that meets the restricted Pod Security Standard and runs the smoke image once."""
    security = {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "readOnlyRootFilesystem": True,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [{"name": name, "image": image, "args": args, "securityContext": security}],
                }
            },
        },
    }


def restricted_namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
