"""The local cluster's add-ons on the real cluster: Traefik (Gateway API and Ingress on 127.0.0.1:8000, a weighted
HTTPRoute split by weight), metrics-server (kubectl top, the HPA reading pod CPU), Prometheus (annotated pods
scraped, with namespace and pod labels) and KWOK (simulated nodes in zones, pods the real scheduler places there,
kept apart from the real node, metrics-server, Prometheus and the network).

Workloads are tools/k8s/smoke (FROM scratch, pushed to the local registry): `smoke serve` answers with its
MESSAGE and counts requests as http_requests_total on /metrics; `smoke spin` burns CPU. Every claim is paired
with a control (a host no route names, a pod without the annotation, a pod without the toleration).
"""

from __future__ import annotations

import errno
import http.client
import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import simulated_nodes
from cluster import Kubectl, bin_dirs, eventually, sh, smoke_image

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER = REPO_ROOT / "tools" / "k8s" / "cluster.sh"
NAMESPACE = "goapp-addons"
WEB = ("127.0.0.1", 8000)
PROMETHEUS = "http://127.0.0.1:9090"
NODE_NAME = "goapp-local"
SIMULATED_SET = "addons"
SIMULATED_NET = "10.245."
ZONES = {"zone-a": 2, "zone-b": 2}

pytestmark = pytest.mark.cluster


@dataclass
class Cluster:
    kubectl: Kubectl
    bins: dict[str, Path]
    image: str

    def json(self, *args: str) -> Any:
        return self.kubectl.json(*args)

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    sh(str(CLUSTER), "up")
    found = Cluster(Kubectl.of_local_cluster(), bin_dirs(), smoke_image(tmp_path_factory.mktemp("smoke"), "addons"))
    nodes = simulated_nodes.Kubectl(found.kubectl.binary, found.kubectl.kubeconfig)
    simulated_nodes.remove(SIMULATED_SET, nodes)
    found.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    found.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        }
    )
    try:
        yield found
    finally:
        found.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", check=False)
        simulated_nodes.remove(SIMULATED_SET, nodes)
        # The ports are the machine's: leave them free, as test_e2e does.
        subprocess.run([str(CLUSTER), "stop"], timeout=300, check=False)


# ------------------------------------------------------------------------------------------ workloads

RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def deployment(
    cluster: Cluster,
    name: str,
    args: list[str],
    replicas: int = 1,
    env: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    cpu: tuple[str, str] = ("10m", "50m"),
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": cluster.image,
        "args": args,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "securityContext": RESTRICTED_CONTAINER,
        # Ephemeral storage as the program's pods request it: simulated nodes must offer it too.
        "resources": {
            "requests": {"cpu": cpu[0], "memory": "16Mi", "ephemeral-storage": "8Mi"},
            "limits": {"cpu": cpu[1], "memory": "32Mi", "ephemeral-storage": "64Mi"},
        },
    }
    if args == ["serve"]:
        container["ports"] = [{"name": "http", "containerPort": 8080}]
        # /metrics, so that probes are not counted as requests.
        container["readinessProbe"] = {"httpGet": {"path": "/metrics", "port": 8080}, "periodSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {
                    "securityContext": RESTRICTED_POD,
                    "terminationGracePeriodSeconds": 2,
                    "containers": [container],
                    **(extra_spec or {}),
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def rolled_out(cluster: Cluster, *names: str) -> None:
    for name in names:
        cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", NAMESPACE, "--timeout=180s")


def pods_of(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.json("get", "pods", "-n", NAMESPACE, "-l", f"app={app}")["items"]
    return items


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The condition of that type of an object's status, or of a route's parent status (conditions at its top)."""
    conditions = obj["conditions"] if "conditions" in obj else obj.get("status", {}).get("conditions") or []
    found = [c for c in conditions if c["type"] == kind]
    return found[0] if found else {}


# ------------------------------------------------------------------------------------------ Traefik


@pytest.fixture(scope="module")
def colours(cluster: Cluster) -> Cluster:
    """Two backends that say who they are: blue and green."""
    objects = []
    for name in ("blue", "green"):
        objects += [deployment(cluster, name, ["serve"], env={"MESSAGE": name}), service(name)]
    cluster.apply(*objects)
    rolled_out(cluster, "blue", "green")
    return cluster


def get_through_traefik(host: str, count: int = 1) -> list[tuple[int, str]]:
    """`count` GETs of / through the entryPoint on one kept-alive connection, naming the host."""
    answers = []
    connection = http.client.HTTPConnection(*WEB, timeout=10)
    try:
        for _ in range(count):
            connection.request("GET", "/", headers={"Host": host})
            response = connection.getresponse()
            answers.append((response.status, response.read().decode().strip()))
    finally:
        connection.close()
    return answers


def http_route(name: str, host: str, backends: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "parentRefs": [{"name": "local", "namespace": "traefik", "sectionName": "web"}],
            "hostnames": [host],
            "rules": [{"backendRefs": [{"name": svc, "port": 80, "weight": weight} for svc, weight in backends]}],
        },
    }


def test_the_gateway_class_and_gateway_are_accepted_by_traefik_on_loopback(cluster: Cluster) -> None:
    gateway_class = cluster.json("get", "gatewayclass", "traefik")
    assert gateway_class["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert condition(gateway_class, "Accepted").get("status") == "True", gateway_class.get("status")
    gateway = cluster.json("get", "gateway", "local", "-n", "traefik")
    assert condition(gateway, "Programmed").get("status") == "True", gateway.get("status")
    assert gateway["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["name"], listener["protocol"], listener["port"]) == ("web", "HTTP", 8000)
    assert listener["allowedRoutes"]["namespaces"]["from"] == "All"
    ingress_class = cluster.json("get", "ingressclass", "traefik")
    assert ingress_class["spec"]["controller"] == "traefik.io/ingress-controller"
    # Control: a host that no route names is Traefik's 404, not another backend. A route naming no host (the
    # local stack's, once `make up` has run on this machine: its URL is an address, and a Gateway API hostname
    # cannot be one) takes every host instead, so then the answer is that route's backend.
    catch_all = [
        f"{route['metadata']['namespace']}/{route['metadata']['name']}"
        for route in cluster.json("get", "httproute", "--all-namespaces")["items"]
        if not route["spec"].get("hostnames")
        and any(ref.get("name") == "local" for ref in route["spec"].get("parentRefs", []))
    ]
    ((status, body),) = get_through_traefik("nothing.addons.test")
    if catch_all:
        print(f"routes naming no host, which answer any host: {catch_all}; answered {status} {body!r}")
        assert body != "404 page not found", f"{catch_all} name no host, so they must take this one too"
    else:
        assert (status, body) == (404, "404 page not found")


def test_an_http_route_in_another_namespace_serves_its_backend_through_loopback(colours: Cluster) -> None:
    cluster = colours
    cluster.apply(http_route("blue", "blue.addons.test", [("blue", 1)]))
    answers = eventually(
        lambda: (a := get_through_traefik("blue.addons.test")) and a[0][0] == 200 and a, "the route to serve"
    )
    assert answers == [(200, "blue")]
    route = cluster.json("get", "httproute", "blue", "-n", NAMESPACE)
    (parent,) = route["status"]["parents"]
    assert parent["controllerName"] == "traefik.io/gateway-controller"
    assert condition(parent, "Accepted").get("status") == "True", parent
    assert condition(parent, "ResolvedRefs").get("status") == "True", parent


def test_a_weighted_http_route_splits_requests_by_weight(colours: Cluster) -> None:
    cluster = colours
    requests, weights = 400, {"blue": 3, "green": 1}
    cluster.apply(http_route("split", "split.addons.test", list(weights.items())))
    eventually(lambda: {a for _, a in get_through_traefik("split.addons.test", 8)} == set(weights), "both backends")
    answers = get_through_traefik("split.addons.test", requests)
    assert {status for status, _ in answers} == {200}
    counts = Counter(body for _, body in answers)
    share = counts["green"] / requests
    expected = weights["green"] / sum(weights.values())
    print(f"weighted split over {requests} requests: {dict(counts)}; green {share:.3f}, weight {expected:.3f}")
    assert set(counts) == set(weights), counts
    assert abs(share - expected) <= 0.05, f"green got {share:.3f} of {requests} requests, weight {expected:.3f}"


def test_an_ingress_of_class_traefik_is_served_and_given_the_loopback_address(colours: Cluster) -> None:
    cluster = colours
    backend = {"service": {"name": "green", "port": {"number": 80}}}
    rule = {"host": "green.addons.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
    cluster.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "green", "namespace": NAMESPACE},
            "spec": {"ingressClassName": "traefik", "rules": [rule]},
        }
    )
    answers = eventually(
        lambda: (a := get_through_traefik("green.addons.test")) and a[0][0] == 200 and a, "the Ingress to serve"
    )
    assert answers == [(200, "green")]
    status = eventually(
        lambda: cluster.json("get", "ingress", "green", "-n", NAMESPACE)["status"]["loadBalancer"].get("ingress"),
        "the Ingress status",
    )
    assert status == [{"ip": "127.0.0.1"}]


# ------------------------------------------------------------------------------------------ metrics-server


TOP_ROW = re.compile(r"^(\S+)\s+(\d+)m\s+(?:\d+%\s+)?(\d+)Mi\b")


def top(cluster: Cluster, *args: str) -> dict[str, tuple[int, int] | None]:
    """`kubectl top pods|nodes` as name -> (millicores, MiB), None for a node it shows as <unknown> (no metrics);
    empty while metrics-server has none yet."""
    done = cluster.kubectl("top", *args, "--no-headers", check=False)
    if done.returncode != 0:
        return {}
    rows: dict[str, tuple[int, int] | None] = {}
    for line in done.stdout.splitlines():
        if (fields := line.split())[1:] and set(fields[1:]) == {"<unknown>"}:
            rows[fields[0]] = None
            continue
        match = TOP_ROW.match(line)
        assert match, f"unexpected kubectl top line: {line!r}"
        rows[match[1]] = (int(match[2]), int(match[3]))
    return rows


def metrics_api_nodes(cluster: Cluster) -> set[str]:
    """The nodes metrics-server has metrics of, from the aggregated API itself."""
    answer = json.loads(cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    return {item["metadata"]["name"] for item in answer["items"]}


def test_metrics_server_is_version_stamped_and_verifies_the_kubelet(cluster: Cluster) -> None:
    version = sh(str(cluster.bins["METRICS_SERVER_BIN"] / "metrics-server"), "--version").strip()
    assert version == "v0.8.0", version
    pid = (Path(cluster.kubectl.kubeconfig).parent / "run" / "metrics-server.pid").read_text().strip()
    args = Path(f"/proc/{pid}/cmdline")
    cmdline = args.read_bytes().split(b"\0")
    assert b"--kubelet-certificate-authority" in cmdline
    assert not [a for a in cmdline if a.startswith(b"--kubelet-insecure-tls")]
    api_service = cluster.json("get", "apiservice", "v1beta1.metrics.k8s.io")
    assert condition(api_service, "Available").get("status") == "True", api_service.get("status")
    assert api_service["spec"].get("insecureSkipTLSVerify") is not True
    assert api_service["spec"]["caBundle"]


def test_kubectl_top_shows_the_node_and_pods_and_the_hpa_reads_pod_cpu(cluster: Cluster) -> None:
    cluster.apply(
        deployment(cluster, "spinner", ["spin"], cpu=("50m", "200m")),
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "spinner", "namespace": NAMESPACE},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "spinner"},
                # One replica at most: the point is that the controller reads the CPU, not that it adds pods.
                "minReplicas": 1,
                "maxReplicas": 1,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                    }
                ],
            },
        },
    )
    rolled_out(cluster, "spinner")
    (pod,) = pods_of(cluster, "spinner")
    name = pod["metadata"]["name"]
    # The spinner uses its whole limit (200m); metrics-server needs two kubelet scrapes (15 s apart) for a rate.
    usage = eventually(
        lambda: (t := top(cluster, "pods", "-n", NAMESPACE)) and (t.get(name) or (0, 0))[0] >= 100 and t,
        "top pods",
        180,
    )
    millicores, mebibytes = usage[name] or (0, 0)
    print(f"kubectl top pods: {name} {millicores}m {mebibytes}Mi")
    assert 100 <= millicores <= 260, usage
    assert mebibytes > 0, usage
    node = eventually(lambda: top(cluster, "nodes").get(NODE_NAME), "top nodes", 120)
    print(f"kubectl top nodes: {NODE_NAME} {node[0]}m {node[1]}Mi")
    assert node[0] > 0, node
    assert node[1] > 0, node

    def hpa_cpu() -> int | None:
        hpa = cluster.json("get", "hpa", "spinner", "-n", NAMESPACE)
        for metric in hpa.get("status", {}).get("currentMetrics") or []:
            utilization = metric.get("resource", {}).get("current", {}).get("averageUtilization")
            if utilization:
                return int(utilization)
        return None

    utilization = eventually(hpa_cpu, "the HPA to read the pod's CPU", 180)
    print(f"HPA: cpu utilization {utilization}% of the 50m request")
    assert utilization >= 200, utilization  # ≥ 100m used of a 50m request
    hpa = cluster.json("get", "hpa", "spinner", "-n", NAMESPACE)
    assert condition(hpa, "ScalingActive").get("status") == "True", hpa["status"]


# ------------------------------------------------------------------------------------------ Prometheus


def prometheus(path: str, **params: str) -> Any:
    url = f"{PROMETHEUS}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]


def test_prometheus_scrapes_annotated_pods_with_namespace_and_pod_labels(cluster: Cluster) -> None:
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
    cluster.apply(
        deployment(cluster, "counted", ["serve"], env={"MESSAGE": "counted"}, annotations=scrape),
        # Control: the same server without the annotation.
        deployment(cluster, "unannotated", ["serve"], env={"MESSAGE": "unannotated"}),
    )
    rolled_out(cluster, "counted", "unannotated")
    (pod,) = pods_of(cluster, "counted")
    requests = 7
    for _ in range(requests):  # straight to the pod, as Prometheus scrapes it: from the host to the pod IP
        with urllib.request.urlopen(f"http://{pod['status']['podIP']}:8080/", timeout=10) as response:
            assert response.read() == b"counted\n"

    name = pod["metadata"]["name"]

    def series(pod_name: str) -> list[dict[str, Any]]:
        # By pod: Prometheus keeps its data across stop and up, so earlier runs' pods may still answer a while.
        query = f'http_requests_total{{namespace="{NAMESPACE}", pod="{pod_name}"}}'
        found: list[dict[str, Any]] = prometheus("/api/v1/query", query=query)["result"]
        return found

    (found,) = eventually(
        lambda: (s := series(name)) and float(s[0]["value"][1]) >= requests and s, "the annotated pod's series", 90
    )
    labels = found["metric"]
    print(f"prometheus: {labels} = {found['value'][1]}")
    assert labels["namespace"] == NAMESPACE
    assert labels["pod"] == pod["metadata"]["name"]
    assert labels["app"] == "counted"
    assert labels["job"] == "kubernetes-pods"
    assert labels["instance"] == f"{pod['status']['podIP']}:8080"
    assert float(found["value"][1]) == requests
    (control,) = pods_of(cluster, "unannotated")
    assert series(control["metadata"]["name"]) == []
    targets = prometheus("/api/v1/targets", state="active")["activeTargets"]
    scraped = {t["labels"].get("pod") for t in targets if t["labels"].get("namespace") == NAMESPACE}
    assert scraped == {pod["metadata"]["name"]}, scraped


# ------------------------------------------------------------------------------------------ KWOK


@pytest.fixture(scope="module")
def simulated(cluster: Cluster) -> list[str]:
    nodes = simulated_nodes.Kubectl(cluster.kubectl.binary, cluster.kubectl.kubeconfig)
    return simulated_nodes.add(ZONES, SIMULATED_SET, nodes)


def test_simulated_nodes_are_ready_in_their_zones_and_tainted(cluster: Cluster, simulated: list[str]) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.json("get", "nodes")["items"]}
    assert set(simulated) <= set(nodes)
    zones = dict(simulated_nodes.node_names(ZONES, SIMULATED_SET))
    for name in simulated:
        node = nodes[name]
        assert condition(node, "Ready").get("status") == "True", node["status"]
        assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == zones[name]
        assert [t["key"] for t in node["spec"]["taints"]] == ["kwok.x-k8s.io/node"]
        assert node["status"]["addresses"][0]["address"].startswith(SIMULATED_NET), node["status"]["addresses"]
    # KWOK leaves the real node alone.
    real = nodes[NODE_NAME]
    assert "kwok.x-k8s.io/node" not in real["metadata"].get("annotations", {})
    assert condition(real, "Ready").get("status") == "True"
    assert not real["spec"].get("taints")


def test_the_real_scheduler_spreads_tolerating_pods_over_simulated_nodes_which_kwok_runs(
    cluster: Cluster, simulated: list[str]
) -> None:
    spread = {
        "tolerations": [simulated_nodes.TOLERATION],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]}]}]
                }
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "simulated"}},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
    }
    # Annotated for Prometheus, which must still leave them alone (their addresses lead nowhere).
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}
    # A policy selecting both, so that kube-router writes firewall chains for the pods it considers its own.
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "simulated-and-grounded", "namespace": NAMESPACE},
        "spec": {
            "podSelector": {
                "matchExpressions": [{"key": "app", "operator": "In", "values": ["simulated", "grounded"]}]
            },
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 8080}]}],
        },
    }
    cluster.apply(
        deployment(cluster, "simulated", ["serve"], replicas=4, annotations=scrape, extra_spec=spread),
        service("simulated"),
        # Control: no toleration, so the real node.
        deployment(cluster, "grounded", ["serve"], env={"MESSAGE": "grounded"}),
        policy,
    )
    rolled_out(cluster, "simulated", "grounded")
    pods = pods_of(cluster, "simulated")
    placed = Counter(p["spec"]["nodeName"] for p in pods)
    print(f"simulated pods per node: {dict(placed)}")
    assert set(placed) == set(simulated), placed
    assert set(placed.values()) == {1}, placed
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready").get("status") == "True"
        assert pod["status"]["podIP"].startswith(SIMULATED_NET), pod["status"]
    assert {p["spec"]["nodeName"] for p in pods_of(cluster, "grounded")} == {NODE_NAME}

    # Nothing reaches a simulated pod, and nothing is sent off the machine: the host routes them as unreachable.
    with socket.socket() as probe:
        probe.settimeout(5)
        started = time.monotonic()
        with pytest.raises(OSError, match="No route to host") as refused:
            probe.connect((pods[0]["status"]["podIP"], 8080))
        assert time.monotonic() - started < 1, "the connection waited instead of failing at once"
    assert refused.value.errno == errno.EHOSTUNREACH
    assert f"unreachable {SIMULATED_NET}0.0/16" in sh("ip", "route", "show", "type", "unreachable")

    # Prometheus keeps no target on them, though annotated.
    time.sleep(6)  # one discovery round and a scrape interval
    targets = prometheus("/api/v1/targets", state="active")["activeTargets"]
    assert not [t["scrapeUrl"] for t in targets if SIMULATED_NET in t["scrapeUrl"]]
    # metrics-server scrapes only the real node: kubectl top shows the simulated ones as <unknown>.
    assert metrics_api_nodes(cluster) == {NODE_NAME}
    shown = top(cluster, "nodes")
    assert {name: shown.get(name, "absent") for name in simulated} == dict.fromkeys(simulated), shown
    # kube-router writes firewall chains only for pods whose host IP is its node's (simulated pods have KWOK's).
    grounded = pods_of(cluster, "grounded")[0]["metadata"]["name"]
    rules = eventually(
        lambda: (r := sh("iptables-save", "-t", "filter")) and f"POD name:{grounded} namespace: {NAMESPACE}" in r and r,
        "kube-router's chains for the grounded pod",
    )
    assert not [p["metadata"]["name"] for p in pods if f"POD name:{p['metadata']['name']} " in rules]


def test_simulated_nodes_are_removed_with_their_pods(cluster: Cluster, simulated: list[str]) -> None:
    cluster.kubectl("delete", "deployment", "simulated", "-n", NAMESPACE, "--wait=true")
    simulated_nodes.remove(SIMULATED_SET, simulated_nodes.Kubectl(cluster.kubectl.binary, cluster.kubectl.kubeconfig))
    names = {n["metadata"]["name"] for n in cluster.json("get", "nodes")["items"]}
    assert names == {NODE_NAME}, names
    assert not pods_of(cluster, "simulated")
