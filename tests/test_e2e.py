"""End to end: `pulumi up` of the local stack on this machine's real cluster, then what users rely on.

The stack is the committed local stack with its own namespace, NodePort and host name on the loopback gateway
(so it never collides with a `make up` deployment) and a private state backend. The tests run in order on one
deployment; the module fixture destroys it and stops the cluster afterwards, also after a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import (
    NOTES_TOKEN,
    ROLLOUT_KEY,
    Cluster,
    Deployed,
    deployed,
    eventually,
    http,
    local_config,
    message,
    running_cluster,
)
from engine import FORBIDDEN_STEPS, REPO_ROOT, UPGRADE_FROM, Workspace, checkout, toolchain

pytestmark = pytest.mark.cluster

NAMESPACE = "goapp-e2e"
NODE_PORT = 30081
UPGRADE_NAMESPACE = "goapp-upgrade"
UPGRADE_NODE_PORT = 30082


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    config = local_config(cluster, NAMESPACE, NODE_PORT)
    with deployed(tmp_path_factory.mktemp("e2e"), "e2e", cluster, config) as stack:
        yield stack


def uid(cluster: Cluster, kind: str, namespace: str) -> str:
    if kind == "namespace":
        found: str = cluster.json("get", "namespace", namespace)["metadata"]["uid"]
        return found
    (item,) = cluster.json("get", kind, "-n", namespace)["items"]
    found = item["metadata"]["uid"]
    return found


def test_a_deployment_of_the_previous_version_upgrades_in_place(cluster: Cluster, tmp_path: Path) -> None:
    """`pulumi up` with the program of the commit before the components split, a note written, `pulumi up` with
    this one: nothing is deleted or replaced, the claim and the namespace are the same objects, the note is there."""
    previous = checkout(UPGRADE_FROM, tmp_path / "previous", "infra", "stacks", "goapp")
    workspace = Workspace(tmp_path / "project", "upgrade", toolchain(), program=previous)
    # The previous program builds the previous goapp from the directory beside its infra/.
    (workspace.root / "goapp").symlink_to(previous / "goapp")
    old = local_config(cluster, UPGRADE_NAMESPACE, UPGRADE_NODE_PORT, stacks=previous / "stacks")
    workspace.init(old)
    try:
        workspace.run("up").check()
        old_url = old["goapp:url"]
        eventually(lambda: http("GET", f"{old_url}/readyz")[0] == 200, "the previous version to be ready")
        assert http("PUT", f"{old_url}/notes/kept", b"written by the previous version")[0] == 201
        before = {kind: uid(cluster, kind, UPGRADE_NAMESPACE) for kind in ("namespace", "pvc")}

        workspace.use_program(REPO_ROOT)
        current = local_config(cluster, UPGRADE_NAMESPACE, UPGRADE_NODE_PORT)
        secrets = {key: current.pop(key) for key in ("goapp:secretEnv", "goapp:rolloutKey")}
        workspace.replace_config(current)
        assert set(secrets) == {"goapp:secretEnv", "goapp:rolloutKey"}
        workspace.set_secret("goapp:secretEnv.NOTES_TOKEN", NOTES_TOKEN)
        workspace.set_secret("goapp:rolloutKey", ROLLOUT_KEY)
        planned = workspace.preview_steps()
        assert [(op, urn) for op, urn in planned if op in FORBIDDEN_STEPS] == []
        workspace.run("up").check()

        assert {kind: uid(cluster, kind, UPGRADE_NAMESPACE) for kind in ("namespace", "pvc")} == before
        url = current["goapp:url"]
        eventually(lambda: http("GET", f"{url}/notes/kept")[0] == 200, "the upgraded version to serve notes")
        assert http("GET", f"{url}/notes/kept") == (200, b"written by the previous version")
        assert http("GET", f"{url}/notes/kept", token=None)[0] == 401, "the upgraded version asks for the token"
    finally:
        workspace.run("destroy")
        cluster.kubectl("delete", "namespace", UPGRADE_NAMESPACE, "--ignore-not-found", "--wait=true", check=False)


def test_hello_answers_through_the_gateway_and_the_node_port(stack: Deployed) -> None:
    wanted = stack.config()["goapp:env"]["APP_MESSAGE"]
    assert stack.url.endswith(".test:8000"), "the test stack is routed by the ingress controller"
    eventually(lambda: message(stack.url) == wanted, "/hello through the gateway")
    assert message(f"http://127.0.0.1:{NODE_PORT}") == wanted, "the NodePort stays available"


def test_a_note_survives_deleting_the_pod(stack: Deployed, cluster: Cluster) -> None:
    assert http("PUT", f"{stack.url}/notes/e2e-survivor", b"written before the pod died")[0] in (200, 201)
    (before,) = stack.pods()
    cluster.kubectl("delete", "pod", "-n", NAMESPACE, before["metadata"]["name"], "--wait=true")

    def new_pod_ready() -> bool:
        pods = stack.pods()
        replaced = bool(pods) and pods[0]["metadata"]["uid"] != before["metadata"]["uid"]
        return replaced and http("GET", f"{stack.url}/readyz")[0] == 200

    eventually(new_pod_ready, "a replacement pod to become ready")
    assert http("GET", f"{stack.url}/notes/e2e-survivor") == (200, b"written before the pod died")


def test_notes_need_the_stacks_token(stack: Deployed) -> None:
    assert http("GET", f"{stack.url}/notes/e2e-survivor", token=None)[0] == 401
    assert http("GET", f"{stack.url}/notes/e2e-survivor", token="not-the-token")[0] == 401
    assert http("GET", f"{stack.url}/hello", token=None)[0] == 200, "/hello stays open"


def test_changing_env_rolls_the_pods_and_serves_the_new_message(stack: Deployed) -> None:
    before = {p["metadata"]["uid"] for p in stack.pods()}
    stack.change(lambda config: config["goapp:env"].update(APP_MESSAGE="Rolled by the end-to-end test"))
    stack.up()
    after = {p["metadata"]["uid"] for p in stack.pods()}
    assert after, "no pod after the rollout"
    assert before.isdisjoint(after), "the env change must replace the pods"
    # The old pod still drains after the rollout completes (preStop, then SHUTDOWN_DRAIN) while its endpoint is
    # dropped; once it is gone, every answer must be the new one.
    eventually(
        lambda: before.isdisjoint(p["metadata"]["uid"] for p in stack.pods(terminating=True)),
        "the old pods to finish draining",
        timeout=120,
    )
    for _ in range(20):
        assert message(stack.url) == "Rolled by the end-to-end test"


def test_no_changes_after_up(stack: Deployed) -> None:
    stack.workspace.run("preview", expect_no_changes=True).check()


def test_pods_run_under_the_enforced_restricted_standard(stack: Deployed, cluster: Cluster) -> None:
    labels = cluster.json("get", "namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    (pod,) = stack.pods()
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod["status"]["phase"] == "Running"
    # Admission, not just our labels: a privileged pod is refused in this namespace.
    overrides = {
        "spec": {"containers": [{"name": "intruder", "image": "busybox", "securityContext": {"privileged": True}}]}
    }
    refused = cluster.kubectl(
        "run",
        "intruder",
        "-n",
        NAMESPACE,
        "--image=busybox",
        "--restart=Never",
        "--dry-run=server",
        "--overrides",
        json.dumps(overrides),
        check=False,
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


def test_destroy_leaves_nothing_of_the_namespace(stack: Deployed, cluster: Cluster) -> None:
    stack.workspace.run("destroy").check()
    eventually(
        lambda: cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0,
        "the namespace to be gone",
        timeout=300,
    )
    assert [r for r in stack.workspace.resources() if r["type"] != "pulumi:pulumi:Stack"] == []
