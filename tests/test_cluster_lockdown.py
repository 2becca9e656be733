"""The local cluster is locked down like a real one (issue 17): what its processes listen on, who may reach the
node address, anonymous requests, etcd's TLS, Secrets at rest, the registry, and the users the components run as.

Each refusal is paired with a control showing the same path works for whom it should, so a broken cluster
cannot pass for a locked-down one.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import secrets
import socket
import ssl
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster import Kubectl, bin_dirs, eventually, sh

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER = REPO_ROOT / "tools" / "k8s" / "cluster.sh"
NODE_IP = "10.244.0.1"
NAMESPACE = "goapp-lockdown"
UNPRIVILEGED = (
    "registry",
    "etcd",
    "kube-apiserver",
    "api-bridge",
    "kube-controller-manager",
    "kube-scheduler",
    "coredns",
    "kwok",
    "metrics-server",
    "prometheus",
    "traefik",
)
ROOT_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "provisioner", "kube-router")
CAP_NET_BIND_SERVICE = 1 << 10

pytestmark = pytest.mark.cluster


@dataclass
class Cluster:
    state: Path
    bins: dict[str, Path]

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(str(self.bins["KUBE_BIN"] / "kubectl"), str(self.state / "kubeconfig"))

    def pid(self, component: str) -> int:
        return int((self.state / "run" / f"{component}.pid").read_text())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    sh(str(CLUSTER), "up")
    state = Path(sh(str(CLUSTER), "kubeconfig-path").strip()).parent
    found = Cluster(state, bin_dirs())
    found.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    found.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            }
        ),
    )
    try:
        yield found
    finally:
        found.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", check=False)
        # The ports are the machine's: leave them free, as test_e2e does.
        subprocess.run([str(CLUSTER), "stop"], timeout=300, check=False)


# ------------------------------------------------------------------------------------------ listeners


@dataclass(frozen=True)
class Listener:
    proto: str
    address: str
    port: int
    program: str


def cluster_pids(cluster: Cluster) -> set[int]:
    """The cluster's host processes: those of its pid files and their children, those running one of its
    binaries, and those naming its state directory (containerd's shims)."""
    recorded = {int(p.read_text()) for p in (cluster.state / "run").glob("*.pid")}
    binaries = str(cluster.bins["KUBE_BIN"].parent.parent)
    pids: set[int] = set()
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if int(proc.name) in recorded or exe.startswith(binaries) or str(cluster.state) in cmdline:
            pids.add(int(proc.name))
    assert recorded <= pids, f"pid files name processes that do not run: {recorded - pids}"
    return pids | {pid for pid, parent in parents.items() if parent in pids}


def listeners_of(pids: set[int]) -> list[Listener]:
    found = []
    for line in sh("ss", "-Hltunp").splitlines():
        fields = line.split()
        owners = {int(pid): name for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line)}
        if not owners.keys() & pids:
            continue
        address, _, port = fields[4].rpartition(":")
        program = next(name for pid, name in owners.items() if pid in pids)
        found.append(Listener(fields[0], address.strip("[]"), int(port), program))
    return found


def test_cluster_processes_listen_on_loopback_only_but_dns_and_the_api_relay(cluster: Cluster) -> None:
    listeners = listeners_of(cluster_pids(cluster))
    on_the_node_address = {
        Listener("tcp", NODE_IP, 53, "coredns"),
        Listener("udp", NODE_IP, 53, "coredns"),
        Listener("tcp", NODE_IP, 6443, "socat"),
    }
    elsewhere = [s for s in listeners if s.address != "127.0.0.1" and s not in on_the_node_address]
    assert elsewhere == [], f"listening beyond 127.0.0.1: {elsewhere}"
    # The check saw the cluster: the relay and DNS on the node address, and the loopback services.
    assert on_the_node_address <= set(listeners), listeners
    loopback = {(s.port, s.program) for s in listeners if s.address == "127.0.0.1"}
    for expected in [
        (2379, "etcd"),
        (6443, "kube-apiserver"),
        (10250, "kubelet"),
        (5000, "docker-registry"),
        # The add-ons: Traefik's entryPoint web, metrics-server, Prometheus, KWOK's health and metrics.
        (8000, "traefik"),
        (4443, "metrics-server"),
        (9090, "prometheus"),
        (10247, "kwok"),
    ]:
        assert expected in loopback, f"{expected} not among {sorted(loopback)}"


def dns_query(name: str) -> bytes:
    header = struct.pack(">HHHHHH", 0x6F6F, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    return header + labels + struct.pack(">HH", 1, 1)


PROBE = """
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if kind == "tcp":
        socket.create_connection((host, port), timeout=3).close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
        s.sendto(bytes.fromhex(sys.argv[4]), (host, port)); s.recvfrom(512)
    print("reached")
except OSError as error:
    print("refused:", error)
"""


@pytest.fixture
def outside_namespace() -> Iterator[int]:
    """A network namespace standing for another machine on another interface (TEST-NET-2 addresses), routed to
    the pod range through this host; held by a process of this test (no /run/netns entry), whose pid is yielded."""
    host_if, ns_if = "goapp-t-host", "goapp-t-out"
    subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
    holder = subprocess.Popen(["unshare", "--net", "sleep", "600"])
    try:
        eventually(lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"), "netns")
        inside = ["nsenter", "-t", str(holder.pid), "-n"]
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", str(holder.pid))
        sh("ip", "addr", "add", "198.51.100.1/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh(*inside, "ip", "addr", "add", "198.51.100.2/30", "dev", ns_if)
        sh(*inside, "ip", "link", "set", ns_if, "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "route", "add", "10.244.0.0/24", "via", "198.51.100.1")
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)


def probe(kind: str, host: str, port: int, payload: bytes = b"", netns_of: int | None = None) -> str:
    command = [sys.executable, "-c", PROBE, kind, host, str(port), payload.hex()]
    inside = ["nsenter", "-t", str(netns_of), "-n"] if netns_of else []
    return sh(*inside, *command, timeout=30).strip()


def test_the_node_address_answers_the_pod_range_and_this_host_only(cluster: Cluster, outside_namespace: int) -> None:
    query = dns_query("kubernetes.default.svc.cluster.local")
    # Control: the outside namespace reaches this host on its own link, and this host reaches DNS and the relay.
    with socket.create_server(("198.51.100.1", 0)) as server:
        assert probe("tcp", "198.51.100.1", server.getsockname()[1], netns_of=outside_namespace) == "reached"
    assert probe("udp", NODE_IP, 53, query) == "reached"
    assert probe("tcp", NODE_IP, 6443) == "reached"
    # From outside the pod range, the node address drops everything.
    assert probe("udp", NODE_IP, 53, query, netns_of=outside_namespace).startswith("refused")
    assert probe("tcp", NODE_IP, 6443, netns_of=outside_namespace).startswith("refused")
    assert "-A GOAPP-NODE-INPUT -s 10.244.0.0/24 -i goapp0 -j RETURN" in sh("iptables", "-w", "-S", "GOAPP-NODE-INPUT")


# ------------------------------------------------------------------------------------------ API server and kubelet


def https_status(url: str, ca: Path, cert: tuple[Path, Path] | None = None) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_api_server_refuses_anonymous_requests_except_its_health_endpoints(cluster: Cluster) -> None:
    api, ca = "https://127.0.0.1:6443", cluster.pki / "ca.crt"
    admin = (cluster.pki / "admin.crt", cluster.pki / "admin.key")
    for path in ("/api", "/version", "/api/v1/namespaces", "/openapi/v2"):
        assert https_status(api + path, ca) == 401, path
        assert https_status(api + path, ca, admin) == 200, path
    # The documented rule (tools/k8s/config/authentication.yaml): health stays open for polling.
    for path in ("/livez", "/readyz", "/healthz"):
        assert https_status(api + path, ca) == 200, path


def test_the_kubelet_refuses_anonymous_requests_on_loopback_and_through_the_node_address(cluster: Cluster) -> None:
    ca, client = (
        cluster.pki / "ca.crt",
        (cluster.pki / "apiserver-kubelet-client.crt", cluster.pki / "apiserver-kubelet-client.key"),
    )
    for host in ("127.0.0.1", NODE_IP):  # the node address is sent to loopback for this host's connections
        assert https_status(f"https://{host}:10250/pods", ca) == 401
        assert https_status(f"https://{host}:10250/pods", ca, client) == 200


# ------------------------------------------------------------------------------------------ etcd and Secrets at rest


def etcd_post(cluster: Cluster, path: str, body: dict[str, Any], cert: tuple[Path, Path] | None) -> Any:
    context = ssl.create_default_context(cafile=str(cluster.pki / "etcd-ca.crt"))
    if cert:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    request = urllib.request.Request(f"https://127.0.0.1:2379{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.load(response)


def etcd_value(cluster: Cluster, key: str) -> bytes:
    client = (cluster.pki / "etcd-healthcheck-client.crt", cluster.pki / "etcd-healthcheck-client.key")
    answer = etcd_post(cluster, "/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()}, client)
    (kv,) = answer["kvs"]
    return base64.b64decode(kv["value"])


def plain_http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (ConnectionError, urllib.error.URLError):
        return None


def test_etcd_speaks_tls_to_clients_of_its_own_ca_only(cluster: Cluster) -> None:
    health = {"key": base64.b64encode(b"/registry/namespaces/default").decode()}
    client = (cluster.pki / "etcd-healthcheck-client.crt", cluster.pki / "etcd-healthcheck-client.key")
    assert etcd_post(cluster, "/v3/kv/range", health, client)["kvs"], "the etcd CA's client must be served"
    for cert in (None, (cluster.pki / "admin.crt", cluster.pki / "admin.key")):  # none, or the cluster CA's admin
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            etcd_post(cluster, "/v3/kv/range", health, cert)
    assert plain_http_status("http://127.0.0.1:2379/health") in (None, 400), "etcd served plain HTTP"
    assert {s.port for s in listeners_of({cluster.pid("etcd")})} == {2379, 2380}


def test_secrets_are_encrypted_at_rest_with_a_key_only_root_reads(cluster: Cluster) -> None:
    marker = "goapp-plaintext-" + secrets.token_hex(8)
    for kind in ("secret generic", "configmap"):
        cluster.kubectl("delete", *kind.split()[:1], "probe", "-n", NAMESPACE, "--ignore-not-found")
        cluster.kubectl("create", *kind.split(), "probe", "-n", NAMESPACE, f"--from-literal=value={marker}")
    stored_secret = etcd_value(cluster, f"/registry/secrets/{NAMESPACE}/probe")
    assert stored_secret.startswith(b"k8s:enc:secretbox:v1:key1:"), stored_secret[:40]
    assert marker.encode() not in stored_secret
    # Control: the same read finds a ConfigMap's value in the clear, so the Secret's absence is encryption.
    assert marker.encode() in etcd_value(cluster, f"/registry/configmaps/{NAMESPACE}/probe")
    # And the API server still reads it back.
    value = cluster.kubectl("get", "secret", "probe", "-n", NAMESPACE, "-o", "jsonpath={.data.value}").stdout
    assert base64.b64decode(value).decode() == marker
    for config in (
        cluster.pki / "encryption-config.yaml",
        cluster.state / "home/kube-apiserver/encryption-config.yaml",
    ):
        assert config.stat().st_mode & 0o777 == 0o600, config
    assert (cluster.state / "home/kube-apiserver/encryption-config.yaml").stat().st_uid == pwd.getpwnam(
        "goapp-kube-apiserver"
    ).pw_uid


# ------------------------------------------------------------------------------------------ registry


def registry(method: str, path: str, accept: str = "") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:5000{path}", method=method, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_registry_refuses_deletes(cluster: Cluster) -> None:
    (tag,) = json.loads(registry("GET", "/v2/goapp/pause/tags/list")[2])["tags"][:1]
    accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
    status, headers, _ = registry("HEAD", f"/v2/goapp/pause/manifests/{tag}", accept)
    assert status == 200
    digest = headers["Docker-Content-Digest"]
    status, _, body = registry("DELETE", f"/v2/goapp/pause/manifests/{digest}")
    assert status == 405, body
    assert b"UNSUPPORTED" in body
    assert registry("HEAD", f"/v2/goapp/pause/manifests/{digest}", accept)[0] == 200


def restricted_pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65535, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }


def test_names_of_other_registries_are_not_answered_by_the_local_one(cluster: Cluster) -> None:
    tag = secrets.token_hex(4)
    pushed = f"127.0.0.1:5000/library/goapp-foreign-probe:{tag}"
    node = cluster.bins["NODE_BIN"]
    sh(
        str(node / "ociimage"),
        "-binary",
        str(node / "pause"),
        "-path",
        "/pause",
        "-tag",
        pushed,
        "-user",
        "65535:65535",
        "-push",
    )
    for name, image in (("local-name", pushed), ("foreign-name", f"goapp-foreign-probe:{tag}")):
        cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--ignore-not-found", "--wait=true")
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(restricted_pod(name, image)))

    def state_of(name: str) -> dict[str, Any]:
        pod = json.loads(cluster.kubectl("get", "pod", name, "-n", NAMESPACE, "-o", "json").stdout)
        statuses = pod["status"].get("containerStatuses") or [{}]
        state: dict[str, Any] = statuses[0].get("state", {})
        return state

    eventually(lambda: "running" in state_of("local-name"), "the pod naming the local registry to run")
    waiting = eventually(
        lambda: (
            state_of("foreign-name").get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
            and state_of("foreign-name")["waiting"]
        ),
        "the pod naming docker.io's library to fail its pull",
    )
    # docker.io/library/goapp-foreign-probe exists at 127.0.0.1:5000 under the same path, yet is not served.
    assert "not found" in waiting.get("message", ""), waiting


# ------------------------------------------------------------------------------------------ users


def status_of(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_components_that_need_no_root_run_as_their_own_unprivileged_users(cluster: Cluster) -> None:
    group = sh("getent", "group", "goapp-cluster").split(":")[2]
    for component in UNPRIVILEGED:
        user = pwd.getpwnam(f"goapp-{component}")
        status = status_of(cluster.pid(component))
        assert status["Uid"].split() == [str(user.pw_uid)] * 4, (component, status["Uid"])
        assert status["Gid"].split() == [group] * 4, (component, status["Gid"])
        assert status["Groups"] == "", component
        assert status["NoNewPrivs"] == "1", component
        allowed = CAP_NET_BIND_SERVICE if component == "coredns" else 0
        assert int(status["CapEff"], 16) == allowed, (component, status["CapEff"])
        assert int(status["CapBnd"], 16) == allowed, (component, status["CapBnd"])
        home = cluster.state / "home" / component
        assert (home.stat().st_uid, home.stat().st_mode & 0o777) == (user.pw_uid, 0o700), component
        for copy in home.iterdir():
            assert (copy.stat().st_uid, copy.stat().st_mode & 0o777) == (user.pw_uid, 0o600), copy
    # The rest manage the host (mounts, namespaces, iptables, volume directories of any uid): root, as documented.
    for component in ROOT_COMPONENTS:
        assert status_of(cluster.pid(component))["Uid"].split()[1] == "0", component
    assert (cluster.pki.stat().st_uid, cluster.pki.stat().st_mode & 0o777) == (0, 0o700)
