"""The tutorial's promises, proven under traffic on the real cluster: rollouts lose nothing, the HPA scales out and
back in, services find each other by DNS, Prometheus collects the metrics, and — with simulated nodes in three
zones — the scheduler spreads a prod-shaped deployment and a drain respects its PodDisruptionBudget.

Every load is bounded in time and count and targets loopback only (tests/traffic.py).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import simulated_nodes
from cluster import (
    NOTES_TOKEN,
    PROMETHEUS,
    Cluster,
    Deployed,
    deployed,
    eventually,
    http,
    local_config,
    message,
    restricted_job,
    restricted_namespace,
    running_cluster,
    sh,
    smoke_image,
)
from engine import REPO_ROOT
from ops.project import BASE_IMAGES, SET_DEFAULT_MESSAGE
from traffic import Traffic

pytestmark = pytest.mark.cluster

CLIENTS_NAMESPACE = "goapp-clients"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


def goapp_image(tmp: Path, message_text: str, version: str) -> str:
    """goapp with a one-line change (its default message), built on the local stand-ins and pushed; its digest."""
    source = tmp / "goapp"
    shutil.copytree(REPO_ROOT / "goapp", source)
    sh(str(SET_DEFAULT_MESSAGE), str(source), message_text)
    printed = sh(str(BASE_IMAGES))
    bases = dict(line.split("=", 1) for line in printed.split() if "=" in line)
    tag = f"127.0.0.1:5000/goapp:{version}"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    sh(
        "docker",
        "build",
        "--network=host",
        "--build-arg",
        f"GO_IMAGE={bases['GO_IMAGE']}",
        "--build-arg",
        f"RUNTIME_IMAGE={bases['RUNTIME_IMAGE']}",
        "--build-arg",
        f"VERSION={version}",
        "--build-arg",
        "COMMIT=e2e",
        "-t",
        tag,
        str(source),
        env=env,
        timeout=1800,
    )
    sh("docker", "push", tag)
    digests = json.loads(sh("docker", "image", "inspect", "--format", "{{json .RepoDigests}}", tag))
    digest: str = next(d for d in digests if d.startswith("127.0.0.1:5000/goapp@"))
    return digest.split("@", 1)[1]


def test_rollouts_under_load_lose_nothing(cluster: Cluster, tmp_path: Path) -> None:
    """While readers, writers and slow uploads run through the stack's URL: an env change, an image change, a secret
    change and a scale-in. Not one request may fail, not one write may be lost or torn."""
    config = local_config(cluster, "goapp-rollouts", 30086)
    config["goapp:replicas"] = 3
    digest = goapp_image(tmp_path, "Hello from the new image!", "e2e-new-image")
    with deployed(tmp_path, "rollouts", cluster, config) as stack:
        stack.workspace.set_secret("goapp:secretEnv.UPSTREAM_KEY", "first-upstream-key-value")
        stack.up()
        changes = []
        with Traffic(stack.url, NOTES_TOKEN, slow_seconds=3.0, seconds=1200) as load:
            time.sleep(3)
            stack.change(lambda c: c["goapp:env"].update(APP_MESSAGE="Hello after the env change!"))
            changes.append(rollout(stack, "env"))
            # The new image's own default message shows once the stack stops setting one.
            stack.change(lambda c: c["goapp:env"].pop("APP_MESSAGE"))
            changes.append(rollout(stack, "image", env={"GOAPP_IMAGE_DIGEST": digest}))
            stack.workspace.set_secret("goapp:secretEnv.UPSTREAM_KEY", "second-upstream-key-value")
            changes.append(rollout(stack, "secret", env={"GOAPP_IMAGE_DIGEST": digest}))
            stack.change(lambda c: c.update({"goapp:replicas": 1}))
            changes.append(rollout(stack, "scale-in", env={"GOAPP_IMAGE_DIGEST": digest}))
            eventually(lambda: len(stack.pods(terminating=True)) == 1, "the scale-in to finish", timeout=180)
            time.sleep(3)
        report = load.report
        print(f"rollouts under load ({', '.join(changes)}): {report.summary()}; /hello answered {dict(report.values)}")
        assert report.failed == 0, report.failures[:10]
        assert report.lost == [], report.lost[:10]
        assert min(report.requests[kind] for kind in ("hello", "write", "read", "slow-upload")) > 0, report.requests
        assert message(stack.url) == "Hello from the new image!", "the new version serves at the end"
        status, version = http("GET", f"{stack.url}/version", token=None)
        assert status == 200
        assert json.loads(version)["version"] == "e2e-new-image"


def rollout(stack: Deployed, what: str, env: dict[str, str] | None = None) -> str:
    before = {p["metadata"]["uid"] for p in stack.pods()}
    started = time.monotonic()
    stack.up(env=env)
    after = {p["metadata"]["uid"] for p in stack.pods()}
    if what != "scale-in":
        assert before.isdisjoint(after), f"the {what} change must replace the pods"
    return f"{what} {time.monotonic() - started:.0f}s"


def test_the_hpa_scales_out_under_load_and_back_in(cluster: Cluster, tmp_path: Path) -> None:
    config = local_config(cluster, "goapp-hpa", 30087)
    config.pop("goapp:replicas", None)
    config["goapp:resources"] = {
        "requests": {"cpu": "20m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    quick = {"stabilizationSeconds": 10, "podsPerMinute": 4, "percentPerMinute": 100}
    config["goapp:autoscaling"] = {"minReplicas": 1, "maxReplicas": 3, "cpuUtilization": 50, "scaleDown": quick}
    config["goapp:storage"] = {**config["goapp:storage"], "accessMode": "ReadWriteOnce"}
    config["goapp:env"] = {**config["goapp:env"], "LOG_LEVEL": "info"}
    with deployed(tmp_path, "hpa", cluster, config) as stack:
        top = eventually(lambda: cluster.kubectl("top", "pods", "-n", "goapp-hpa", check=False).stdout, "kubectl top")
        assert "goapp-" in top, top
        stop = threading.Event()
        workers = [threading.Thread(target=hammer, args=(stack.url, stop), daemon=True) for _ in range(6)]
        for worker in workers:
            worker.start()
        started = time.monotonic()
        try:
            eventually(lambda: replicas(cluster) > 1, "the HPA to add a pod under load", timeout=240, every=2)
            scaled_after = time.monotonic() - started
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)
        print(f"HPA: first pod added {scaled_after:.0f}s after the load began")
        eventually(lambda: replicas(cluster) == 1, "the HPA to scale back in after the load", timeout=300, every=5)


def replicas(cluster: Cluster) -> int:
    count: int = cluster.json("get", "deployment", "goapp", "-n", "goapp-hpa")["spec"]["replicas"]
    return count


def hammer(url: str, stop: threading.Event, limit_seconds: float = 300) -> None:
    """CPU load on /hello, bounded in time, on loopback only (through tests/traffic.py's rules)."""
    deadline = time.monotonic() + limit_seconds
    load = Traffic(url, NOTES_TOKEN, readers=1, writers=0, slow_uploads=0, seconds=limit_seconds)
    load.start()
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.5)
    load.stop()


def test_another_namespace_finds_the_service_by_its_dns_name(cluster: Cluster, tmp_path: Path) -> None:
    config = local_config(cluster, "goapp-discovery", 30088)
    policy = config["goapp:networkPolicy"]
    config["goapp:networkPolicy"] = {**policy, "allowFrom": {**policy["allowFrom"], "namespaces": [CLIENTS_NAMESPACE]}}
    image = smoke_image(tmp_path)
    with deployed(tmp_path, "discovery", cluster, config) as stack:
        dns_name = stack.workspace.engine.outputs("discovery")["dnsName"]
        assert dns_name == "goapp.goapp-discovery.svc.cluster.local"
        cluster.apply([restricted_namespace(CLIENTS_NAMESPACE)])
        try:
            cluster.apply(
                [restricted_job("client", CLIENTS_NAMESPACE, image, ["get-retrying", f"http://{dns_name}/hello"])]
            )
            waited = cluster.kubectl(
                "wait", "-n", CLIENTS_NAMESPACE, "job/client", "--for=condition=Complete", "--timeout=180s", check=False
            )
            logs = cluster.kubectl("logs", "-n", CLIENTS_NAMESPACE, "job/client", check=False)
            pods = cluster.kubectl("get", "pods", "-n", CLIENTS_NAMESPACE, "-o", "wide", check=False).stdout
            assert waited.returncode == 0, f"the client Job did not complete:\n{pods}\n{logs.stdout}{logs.stderr}"
            assert "Hello from the local stack!" in logs.stdout, logs.stdout
        finally:
            cluster.kubectl("delete", "namespace", CLIENTS_NAMESPACE, "--wait=false", check=False)


def test_prometheus_collects_the_apps_request_counter(cluster: Cluster, tmp_path: Path) -> None:
    config = local_config(cluster, "goapp-monitored", 30089)
    config["goapp:replicas"] = 2
    with deployed(tmp_path, "monitored", cluster, config) as stack:
        query = 'sum by (pod) (http_requests_total{namespace="goapp-monitored"})'

        def series() -> dict[str, float]:
            status, body = http(
                "GET", f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode({'query': query})}", token=None
            )
            assert status == 200, body
            return {r["metric"]["pod"]: float(r["value"][1]) for r in json.loads(body)["data"]["result"]}

        pods = {p["metadata"]["name"] for p in stack.pods()}

        def every_pods_series() -> dict[str, float]:
            found = series()
            return found if set(found) == pods else {}

        first = eventually(every_pods_series, "both pods' series", timeout=180)
        for _ in range(200):
            message(stack.url)
        eventually(lambda: sum(series().values()) >= sum(first.values()) + 200, "the counter to grow", timeout=120)


# --- beyond one machine, by simulation ---------------------------------------------------------------------------

ZONES = ("zone-a", "zone-b", "zone-c")


def prod_shaped(namespace: str) -> list[dict[str, Any]]:
    """prod's own rendered Deployment and PodDisruptionBudget (the gates' render), moved to `namespace`, at 10
    replicas, placed on the simulated nodes only; there is no storage on simulated nodes, so the data volume is an
    emptyDir."""
    good = REPO_ROOT / "gates" / "fixtures" / "good" / "prod" / "1-manifest"
    documents = [yaml.safe_load(p.read_text()) for p in good.glob("*.yaml")]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    budget = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
    for document in (deployment, budget):
        document["metadata"]["namespace"] = namespace
    deployment["spec"]["replicas"] = 10
    pod = deployment["spec"]["template"]["spec"]
    pod["tolerations"] = [simulated_nodes.TOLERATION]
    pod["nodeSelector"] = {"type": "kwok"}
    pod["volumes"] = [v if v["name"] != "data" else {"name": "data", "emptyDir": {}} for v in pod["volumes"]]
    pod["containers"][0]["envFrom"] = []
    pod["serviceAccountName"] = "default"
    return [deployment, budget]


def placement(cluster: Cluster, namespace: str) -> tuple[Counter[str], Counter[str], int]:
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in cluster.json("get", "nodes")["items"]}
    pods = cluster.json("get", "pods", "-n", namespace)["items"]
    running = [p for p in pods if p["metadata"].get("deletionTimestamp") is None and p["spec"].get("nodeName")]
    ready = sum(
        1
        for p in running
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    )
    per_node = Counter(p["spec"]["nodeName"] for p in running)
    per_zone = Counter(nodes[name]["topology.kubernetes.io/zone"] for name in per_node.elements())
    return per_zone, per_node, ready


def skew(counts: Counter[str], domains: list[str]) -> int:
    values = [counts.get(domain, 0) for domain in domains]
    return max(values) - min(values)


def test_a_prod_shaped_deployment_spreads_over_zones_and_a_drain_respects_its_budget(cluster: Cluster) -> None:
    namespace = "goapp-simulated"
    names = simulated_nodes.add(dict.fromkeys(ZONES, 2), node_set="prod")
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    try:
        cluster.apply(prod_shaped(namespace))
        try:
            eventually(lambda: placement(cluster, namespace)[2] == 10, "10 pods Ready on simulated nodes")
        except AssertionError:
            pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
            events = cluster.kubectl("get", "events", "-n", namespace, check=False).stdout
            raise AssertionError(f"not 10 pods Ready on simulated nodes:\n{pods}\n{events[-3000:]}") from None
        per_zone, per_node, _ = placement(cluster, namespace)
        print(f"spread of 10 replicas: per zone {dict(per_zone)}, per node {dict(per_node)}")
        assert skew(per_zone, list(ZONES)) <= 1
        assert skew(per_node, names) <= 1

        budget = cluster.json("get", "pdb", "goapp", "-n", namespace)["spec"]["maxUnavailable"]
        worst = [10]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                worst[0] = min(worst[0], placement(cluster, namespace)[2])
                time.sleep(0.3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        drained = names[0]
        cluster.kubectl("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s")
        eventually(lambda: placement(cluster, namespace)[2] == 10, "the evicted pods to run elsewhere")
        done.set()
        watcher.join()
        per_zone, per_node, _ = placement(cluster, namespace)
        print(
            f"after draining {drained}: per zone {dict(per_zone)}, per node {dict(per_node)}; fewest ready {worst[0]}"
        )
        assert 10 - worst[0] <= budget, f"{10 - worst[0]} pods unavailable during the drain, the budget allows {budget}"
        assert per_node.get(drained, 0) == 0
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        simulated_nodes.remove("prod")
