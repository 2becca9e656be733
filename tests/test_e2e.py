"""End to end: `pulumi up` of the local stack on this machine's real cluster, then what users rely on.

The stack is the committed local stack with its own namespace and NodePort (so it never collides
with a `make up` deployment) and a private state backend. The tests run in order on one deployment;
the module fixture destroys it and stops the cluster afterwards, also after a failure.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import FORBIDDEN_STEPS, REPO_ROOT, SCRIPTS, UPGRADE_FROM, Workspace, checkout, toolchain

pytestmark = pytest.mark.cluster

NAMESPACE = "goapp-e2e"
NODE_PORT = 30081
URL = f"http://127.0.0.1:{NODE_PORT}"
SELECTOR = "app.kubernetes.io/name=goapp"
NOTES_TOKEN = "e2e-notes-token-0f5d7c1e9a2b4c6d"
ROLLOUT_KEY = "e2e-rollout-key-3a9c1f0b7d5e2a4c6e8f"


def sh(*args: str, timeout: int = 900) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


class Cluster:
    def __init__(self) -> None:
        self.kubeconfig = sh(str(SCRIPTS / "cluster.sh"), "kubeconfig-path").strip()
        bins = sh(str(REPO_ROOT / "tools" / "k8s" / "build.sh"), "print-bin-dirs")
        match = re.search(r"KUBE_BIN=\"?([^\"\n]+)", bins)
        assert match, bins
        self.kubectl_path = str(Path(match[1]) / "kubectl")

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.kubectl_path, "--kubeconfig", self.kubeconfig, *args], capture_output=True, text=True, timeout=300
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def all_pods(self) -> list[dict[str, Any]]:
        """Every pod of the app, terminating ones included."""
        items: list[dict[str, Any]] = self.json("get", "pods", "-n", NAMESPACE, "-l", SELECTOR)["items"]
        return items

    def pods(self) -> list[dict[str, Any]]:
        return [p for p in self.all_pods() if p["metadata"].get("deletionTimestamp") is None]


def http(
    method: str, path: str, body: bytes | None = None, token: str | None = NOTES_TOKEN, base: str = URL
) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def eventually(check: Any, what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, AssertionError) as error:
            last = error
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    sh(str(SCRIPTS / "cluster.sh"), "up")
    try:
        yield Cluster()
    finally:
        subprocess.run([str(SCRIPTS / "cluster.sh"), "stop"], timeout=300, check=False)


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    sh(str(SCRIPTS / "docker-up.sh"))
    sh(str(SCRIPTS / "base-images.sh"))
    workspace = Workspace(tmp_path_factory.mktemp("e2e") / "project", "e2e", toolchain())
    init_local_stack(workspace, local_config(REPO_ROOT / "stacks", cluster))
    try:
        workspace.run("up").check()
        yield workspace
    finally:
        workspace.run("destroy")
        cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", check=False)


def local_config(
    stacks: Path, cluster: Cluster, namespace: str = NAMESPACE, node_port: int = NODE_PORT
) -> dict[str, Any]:
    """The local stack of a checkout (stacks/), in its own namespace and NodePort, on this cluster."""
    config: dict[str, Any] = yaml.safe_load((stacks / "Pulumi.local.yaml").read_text())["config"]
    config["goapp:namespace"] = namespace
    config["goapp:service"]["nodePort"] = node_port
    config["goapp:url"] = f"http://127.0.0.1:{node_port}"
    config["goapp:kubernetes"]["kubeconfig"] = cluster.kubeconfig
    return config


def init_local_stack(workspace: Workspace, config: dict[str, Any]) -> None:
    """A new stack from `config`: its secrets are set again under the workspace's own passphrase salt (the
    committed ciphertexts belong to the committed stack file's salt), the notes token to one the tests know."""
    secrets = {key: config.pop(key) for key in ("goapp:secretEnv", "goapp:rolloutKey") if key in config}
    workspace.init(config)
    if "goapp:secretEnv" in secrets:
        workspace.set_secret("goapp:secretEnv.NOTES_TOKEN", NOTES_TOKEN)
    if "goapp:rolloutKey" in secrets:
        workspace.set_secret("goapp:rolloutKey", ROLLOUT_KEY)


def configured_message(workspace: Workspace) -> str:
    config = yaml.safe_load(workspace.config_file.read_text())["config"]
    message: str = config["goapp:env"]["APP_MESSAGE"]
    return message


UPGRADE_NAMESPACE = "goapp-upgrade"
UPGRADE_NODE_PORT = 30082


def test_a_deployment_of_the_previous_version_upgrades_in_place(cluster: Cluster, tmp_path: Path) -> None:
    """`pulumi up` with the program of the commit before the components split, a note written, `pulumi up` with
    this one: nothing is deleted or replaced, the claim and the namespace are the same objects, the note is there."""
    previous = checkout(UPGRADE_FROM, tmp_path / "previous", "infra", "stacks", "goapp")
    workspace = Workspace(tmp_path / "project", "upgrade", toolchain(), program=previous)
    # The previous program builds the previous goapp from the directory beside its infra/.
    (workspace.root / "goapp").symlink_to(previous / "goapp")
    base = f"http://127.0.0.1:{UPGRADE_NODE_PORT}"
    workspace.init(local_config(previous / "stacks", cluster, UPGRADE_NAMESPACE, UPGRADE_NODE_PORT))
    try:
        workspace.run("up").check()
        eventually(lambda: http("GET", "/readyz", base=base)[0] == 200, "the previous version to be ready")
        assert http("PUT", "/notes/kept", b"written by the previous version", base=base)[0] == 201
        before = {kind: uid(cluster, kind, UPGRADE_NAMESPACE) for kind in ("namespace", "pvc")}

        workspace.use_program(REPO_ROOT)
        current = local_config(REPO_ROOT / "stacks", cluster, UPGRADE_NAMESPACE, UPGRADE_NODE_PORT)
        secrets = {key: current.pop(key) for key in ("goapp:secretEnv", "goapp:rolloutKey")}
        workspace.replace_config(current)
        assert set(secrets) == {"goapp:secretEnv", "goapp:rolloutKey"}
        workspace.set_secret("goapp:secretEnv.NOTES_TOKEN", NOTES_TOKEN)
        workspace.set_secret("goapp:rolloutKey", ROLLOUT_KEY)
        planned = workspace.preview_steps()
        assert [(op, urn) for op, urn in planned if op in FORBIDDEN_STEPS] == []
        workspace.run("up").check()

        assert {kind: uid(cluster, kind, UPGRADE_NAMESPACE) for kind in ("namespace", "pvc")} == before
        eventually(lambda: http("GET", "/notes/kept", base=base)[0] == 200, "the upgraded version to serve notes")
        assert http("GET", "/notes/kept", base=base) == (200, b"written by the previous version")
        assert http("GET", "/notes/kept", token=None, base=base)[0] == 401, "the upgraded version asks for the token"
    finally:
        workspace.run("destroy")
        cluster.kubectl("delete", "namespace", UPGRADE_NAMESPACE, "--ignore-not-found", "--wait=true", check=False)


def uid(cluster: Cluster, kind: str, namespace: str) -> str:
    if kind == "namespace":
        found: str = cluster.json("get", "namespace", namespace)["metadata"]["uid"]
        return found
    (item,) = cluster.json("get", kind, "-n", namespace)["items"]
    found = item["metadata"]["uid"]
    return found


def test_hello_answers_with_the_configured_message(stack: Workspace) -> None:
    status, body = eventually(lambda: (r := http("GET", "/hello"))[0] == 200 and r, "/hello through the Service")
    assert status == 200
    assert json.loads(body) == {"message": configured_message(stack)}


def test_a_note_survives_deleting_the_pod(stack: Workspace, cluster: Cluster) -> None:
    assert http("PUT", "/notes/e2e-survivor", b"written before the pod died")[0] in (200, 201, 204)
    (before,) = cluster.pods()
    cluster.kubectl("delete", "pod", "-n", NAMESPACE, before["metadata"]["name"], "--wait=true")

    def new_pod_ready() -> bool:
        pods = cluster.pods()
        return (
            bool(pods) and pods[0]["metadata"]["uid"] != before["metadata"]["uid"] and http("GET", "/readyz")[0] == 200
        )

    eventually(new_pod_ready, "a replacement pod to become ready")
    status, body = http("GET", "/notes/e2e-survivor")
    assert (status, body) == (200, b"written before the pod died")


def test_notes_need_the_stacks_token(stack: Workspace) -> None:
    assert http("GET", "/notes/e2e-survivor", token=None)[0] == 401
    assert http("GET", "/notes/e2e-survivor", token="not-the-token")[0] == 401
    assert http("GET", "/hello", token=None)[0] == 200, "/hello stays open"


def test_changing_env_rolls_the_pods_and_serves_the_new_message(stack: Workspace, cluster: Cluster) -> None:
    before = {p["metadata"]["uid"] for p in cluster.pods()}
    config = yaml.safe_load(stack.config_file.read_text())
    config["config"]["goapp:env"]["APP_MESSAGE"] = "Rolled by the end-to-end test"
    stack.config_file.write_text(yaml.safe_dump(config))
    stack.run("up").check()
    after = {p["metadata"]["uid"] for p in cluster.pods()}
    assert after, "no pod after the rollout"
    assert before.isdisjoint(after), "the env change must replace the pods"
    # The old pod still drains after the rollout completes (preStop, then SHUTDOWN_DRAIN) while kube-proxy
    # drops its endpoint; once it is gone, every answer must be the new one.
    eventually(
        lambda: before.isdisjoint(p["metadata"]["uid"] for p in cluster.all_pods()),
        "the old pods to finish draining",
        timeout=120,
    )
    wanted = (200, {"message": "Rolled by the end-to-end test"})
    for _ in range(20):
        status, body = http("GET", "/hello")
        assert (status, json.loads(body)) == wanted


def test_no_changes_after_up(stack: Workspace) -> None:
    stack.run("preview", expect_no_changes=True).check()


def test_pods_run_under_the_enforced_restricted_standard(stack: Workspace, cluster: Cluster) -> None:
    labels = cluster.json("get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    (pod,) = cluster.pods()
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod["status"]["phase"] == "Running"
    # Admission, not just our labels: a privileged pod is refused in this namespace.
    refused = cluster.kubectl(
        "run",
        "intruder",
        "-n",
        NAMESPACE,
        "--image=busybox",
        "--restart=Never",
        "--dry-run=server",
        "--overrides",
        json.dumps(
            {
                "spec": {
                    "containers": [{"name": "intruder", "image": "busybox", "securityContext": {"privileged": True}}]
                }
            }
        ),
        check=False,
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


def test_destroy_leaves_nothing_of_the_namespace(stack: Workspace, cluster: Cluster) -> None:
    stack.run("destroy").check()
    eventually(
        lambda: cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0,
        "the namespace to be gone",
        timeout=300,
    )
    assert [r for r in stack.resources() if r["type"] != "pulumi:pulumi:Stack"] == []
