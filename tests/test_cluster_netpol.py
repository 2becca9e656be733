"""NetworkPolicy is enforced on the local cluster (kube-router's network policy controller): the app, deployed by
the real program with `goapp:networkPolicy`, is served to pods of the listed namespace only, and itself reaches
nothing but the cluster DNS.

The stack is the committed local stack with its own namespace, NodePort and state, and one namespace listed in
`networkPolicy.allowFrom.namespaces`. Probe pods (tools/k8s/smoke, FROM scratch, pushed to the local registry)
run in a listed and an unlisted namespace; the app pod gets the same probe as an ephemeral container, which
shares its network namespace and therefore its policy. Every refusal has a control: the same target reached
from a pod that no policy restricts.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from cluster import Kubectl, eventually, sh, smoke_image
from engine import REPO_ROOT, Workspace, toolchain
from ops.project import BASE_IMAGES, CLUSTER_SH

pytestmark = pytest.mark.cluster

APP_NAMESPACE = "goapp-netpol"
LISTED = "goapp-netpol-listed"
UNLISTED = "goapp-netpol-unlisted"
NODE_PORT = 30082
NODE_IP = "10.244.0.1"
API_SERVICE = "10.96.0.1:443"
APP_SELECTOR = "app.kubernetes.io/name=goapp"


@pytest.fixture(scope="module")
def kubectl() -> Iterator[Kubectl]:
    sh(str(CLUSTER_SH), "up")
    try:
        yield Kubectl.of_local_cluster()
    finally:
        # The ports are the machine's: leave them free, as test_e2e does.
        subprocess.run([str(CLUSTER_SH), "stop"], timeout=300, check=False)


@pytest.fixture(scope="module")
def probe_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The smoke workload, built on the host and packed FROM scratch: no base image can be pulled here."""
    return smoke_image(tmp_path_factory.mktemp("smoke"), "netpol")


def without_secrets(config: dict[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """The config with every `secure:` value dropped (they are encrypted under the committed stack's salt, which a
    new stack does not share), and the paths where they were."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and set(value) == {"secure"}:
            dropped.append(path)
        elif isinstance(value, dict):
            kept[key], inner = without_secrets(value, path)
            dropped += inner
        else:
            kept[key] = value
    return kept, dropped


def restricted_namespace(kubectl: Kubectl, name: str) -> None:
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true")
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
    )
    eventually(
        lambda: kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0, "default SA"
    )


def web_pod(namespace: str, image: str) -> dict[str, Any]:
    """The smoke server on 8080 (a target) that the test also execs probes in (a client)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "netpol-probe"}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "env": [{"name": "MESSAGE", "value": namespace}, {"name": "DATA_DIR", "value": "/data"}],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


@dataclass
class Setup:
    kubectl: Kubectl
    image: str
    app_pod: str
    app_ip: str
    app_port: int
    service: str
    service_ip: str
    web_ip: dict[str, str]

    def probe(self, namespace: str, pod: str, *args: str, container: str | None = None) -> tuple[bool, str]:
        """Runs a smoke probe inside a pod; (reached, what it said)."""
        target = ["-c", container] if container else []
        done = self.kubectl("exec", "-n", namespace, pod, *target, "--", "/smoke", *args, check=False)
        return done.returncode == 0, (done.stdout + done.stderr).strip()

    def from_app(self, *args: str) -> tuple[bool, str]:
        return self.probe(APP_NAMESPACE, self.app_pod, *args, container="probe")


@pytest.fixture(scope="module")
def setup(kubectl: Kubectl, probe_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    sh(str(BASE_IMAGES))
    for namespace in (LISTED, UNLISTED):
        restricted_namespace(kubectl, namespace)
        kubectl("apply", "-f", "-", stdin=json.dumps(web_pod(namespace, probe_image)))

    workspace = Workspace(tmp_path_factory.mktemp("netpol") / "project", "netpol", toolchain())
    local = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]
    config, secret_paths = without_secrets(local)
    config["goapp:namespace"] = APP_NAMESPACE
    config["goapp:service"]["nodePort"] = NODE_PORT
    config["goapp:url"] = f"http://127.0.0.1:{NODE_PORT}"
    config["goapp:kubernetes"]["kubeconfig"] = kubectl.kubeconfig
    policy = config["goapp:networkPolicy"]
    policy["allowFrom"]["namespaces"] = [LISTED]
    assert policy["dns"] == {"cidrs": [f"{NODE_IP}/32"]}, (
        "on this cluster DNS is the host's CoreDNS on the node address"
    )
    workspace.init(config)
    for path in secret_paths:
        workspace.set_secret(path, secrets.token_urlsafe(32))
    try:
        workspace.run("up").check()
        for namespace in (LISTED, UNLISTED):
            kubectl("wait", "pod/web", "-n", namespace, "--for=condition=Ready", "--timeout=180s")
        (pod,) = [
            p
            for p in kubectl.json("get", "pods", "-n", APP_NAMESPACE, "-l", APP_SELECTOR)["items"]
            if p["metadata"].get("deletionTimestamp") is None
        ]
        (container,) = pod["spec"]["containers"]
        (port,) = [p["containerPort"] for p in container["ports"] if p.get("name") == "http"]
        (service,) = kubectl.json("get", "services", "-n", APP_NAMESPACE, "-l", APP_SELECTOR)["items"]
        # The app pod's own probe: an ephemeral container shares the pod's network namespace, so its traffic
        # is the app pod's traffic under the app's NetworkPolicy.
        name = pod["metadata"]["name"]
        kubectl("debug", "-n", APP_NAMESPACE, name, f"--image={probe_image}", "--container=probe",
                "--profile=restricted", "--", "/smoke", "wait")  # fmt: skip
        eventually(
            lambda: any(
                s["name"] == "probe" and "running" in s["state"]
                for s in kubectl.json("get", "pod", name, "-n", APP_NAMESPACE)["status"].get(
                    "ephemeralContainerStatuses", []
                )
            ),
            "the probe container in the app pod",
        )
        web_ip = {ns: kubectl.json("get", "pod", "web", "-n", ns)["status"]["podIP"] for ns in (LISTED, UNLISTED)}
        yield Setup(
            kubectl,
            probe_image,
            name,
            pod["status"]["podIP"],
            port,
            f"{service['metadata']['name']}.{APP_NAMESPACE}.svc.cluster.local:{service['spec']['ports'][0]['port']}",
            f"{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}",
            web_ip,
        )
    finally:
        workspace.run("destroy")
        for namespace in (APP_NAMESPACE, LISTED, UNLISTED):
            kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", check=False)


def refused(setup: Setup, namespace: str, pod: str, *args: str, container: str | None = None) -> str:
    """Waits until the probe is refused (the controller applies a new policy within seconds) and returns why."""
    result = eventually(
        lambda: (r := setup.probe(namespace, pod, *args, container=container)) and not r[0] and r,
        f"{' '.join(args)} from {namespace}/{pod} to be refused",
        timeout=60,
    )
    said: str = result[1]
    return said


def test_the_program_shipped_the_policy_listing_one_namespace(setup: Setup) -> None:
    (policy,) = setup.kubectl.json("get", "networkpolicies", "-n", APP_NAMESPACE)["items"]
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": LISTED}}} in sources
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_a_pod_of_the_listed_namespace_is_served(setup: Setup) -> None:
    for url in (f"http://{setup.app_ip}:{setup.app_port}/readyz", f"http://{setup.service}/readyz"):
        reached, said = setup.probe(LISTED, "web", "get", url)
        assert reached, said
        assert said.startswith("200 "), said


def test_a_pod_of_an_unlisted_namespace_is_refused_on_the_app_port(setup: Setup) -> None:
    # Control: this pod's network works and nothing restricts it: it reaches the other namespace's pod.
    reached, said = setup.probe(UNLISTED, "web", "get", f"http://{setup.web_ip[LISTED]}:8080/")
    assert reached, said
    assert said.startswith("200 "), said
    for target in (f"{setup.app_ip}:{setup.app_port}", setup.service_ip):
        refused(setup, UNLISTED, "web", "connect", target)


def test_the_app_pod_resolves_names_through_the_cluster_dns(setup: Setup) -> None:
    reached, said = setup.from_app("resolve", "kubernetes.default.svc.cluster.local")
    assert reached, said
    assert "10.96.0.1" in said
    reached, said = setup.from_app("connect", f"{NODE_IP}:53")  # DNS over TCP too
    assert reached, said


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(API_SERVICE, id="API through the kubernetes Service"),
        pytest.param(f"{NODE_IP}:6443", id="API relay on the node address"),
        pytest.param("web-of-listed-namespace", id="another pod"),
        pytest.param("web-of-unlisted-namespace", id="a pod of another namespace"),
    ],
)
def test_the_app_pod_reaches_nothing_but_the_cluster_dns(setup: Setup, target: str) -> None:
    if target.startswith("web-of-"):
        target = f"{setup.web_ip[LISTED if 'unlisted' not in target else UNLISTED]}:8080"
    # Control: a pod without any policy reaches the target.
    reached, said = setup.probe(
        UNLISTED if target != f"{setup.web_ip[UNLISTED]}:8080" else LISTED, "web", "connect", target
    )
    assert reached, said
    refused(setup, APP_NAMESPACE, setup.app_pod, "connect", target, container="probe")
