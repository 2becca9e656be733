"""tools/k8s/cluster.sh's verbs on the real host (issue 17): one lock taken before any work, a failed `up` that
leaves nothing half-started, certificates renewed near expiry, and a `delete` that leaves the host as it was.

The module ends with the cluster deleted; the next cluster test's `up` creates it again (binaries stay cached).
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER = REPO_ROOT / "tools" / "k8s" / "cluster.sh"
COMPONENTS = [
    "registry",
    "etcd",
    "containerd",
    "kube-apiserver",
    "api-bridge",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "provisioner",
    "coredns",
    "kube-router",
    "kwok",
    "metrics-server",
    "prometheus",
    "traefik",
]
HOST_DIRS = (
    "/var/log/containers",
    "/var/lib/cni",
    "/run/netns",
    "/run/containerd",
    "/var/log/pods",
    "/var/lib/kubelet",
)
FOREIGN_CHAIN = "FOREIGN-KEEP"
STATES = ("running", "stopped")

pytestmark = pytest.mark.cluster


def run(*args: str, env: dict[str, str] | None = None, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False
    )


def sh(*args: str, timeout: int = 1800) -> str:
    done = run(*args, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


STATE = Path(sh(str(CLUSTER), "kubeconfig-path").strip()).parent
CACHE = STATE.parent
BIN_DIRS = dict(re.findall(r"^([A-Z_]+)=(.+)$", sh(str(REPO_ROOT / "tools/k8s/build.sh"), "print-bin-dirs"), re.M))


def components_running() -> list[str]:
    status = run(str(CLUSTER), "status", timeout=60)
    if status.stdout.startswith("cluster: absent"):  # deleted: nothing can run
        return []
    # Component lines only ("registry  running (pid 1)"; the trailing "registry  127.0.0.1:5000" is the address).
    states = {f[0]: f[1] for f in map(str.split, status.stdout.splitlines()) if len(f) >= 2 and f[1] in STATES}
    assert set(states) == set(COMPONENTS), status.stdout
    return [name for name in COMPONENTS if states[name] == "running"]


def cluster_processes() -> list[str]:
    """Every process of the cluster on this host: its binaries, those naming its state (the registry,
    containerd and its shims), the API relay, and whatever runs in the kubelet's pod cgroups."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            exe = os.readlink(proc / "exe")
            cgroups = (proc / "cgroup").read_text()
        except OSError:
            continue
        if (
            exe.startswith(str(CACHE / "k8s"))
            or str(STATE) in cmdline
            or "bind=10.244.0.1" in cmdline
            or "/kubepods" in cgroups
        ):
            found.append(f"{proc.name} {cmdline[:160]}")
    return found


@pytest.fixture(scope="module", autouse=True)
def leave_the_ports_free() -> Iterator[None]:
    """Whatever a test leaves running is stopped at the end: the ports are the machine's."""
    yield
    run(str(CLUSTER), "stop", timeout=300)


def stop() -> None:
    sh(str(CLUSTER), "stop")
    assert components_running() == []


# ------------------------------------------------------------------------------------------ the lock


def test_a_second_concurrent_up_waits_for_the_first_and_starts_nothing_twice() -> None:
    stop()
    ups = [
        subprocess.Popen([str(CLUSTER), "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [up.communicate(timeout=1800) for up in ups]
    logs = "".join(err for _, err in outputs)
    assert [up.returncode for up in ups] == [0, 0], logs[-4000:]
    assert logs.count("another tools/k8s/cluster.sh holds") == 1, logs[-4000:]
    for component in COMPONENTS:
        assert logs.count(f"[cluster] starting {component}") == 1, (component, logs[-4000:])
    assert components_running() == COMPONENTS
    # One process per binary, not two racing for the same ports.
    binaries = {
        BIN_DIRS["ETCD_BIN"] + "/etcd",
        BIN_DIRS["KUBE_BIN"] + "/kube-apiserver",
        BIN_DIRS["KUBE_BIN"] + "/kubelet",
    }
    running = [
        os.readlink(f"/proc/{p}/exe") for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/exe")
    ]
    for binary in binaries:
        assert running.count(binary) == 1, binary


@pytest.fixture
def held_lock() -> Iterator[None]:
    with open(CACHE / "cluster.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}: test_cluster_lifecycle\n")
        lock.flush()
        yield
        fcntl.flock(lock, fcntl.LOCK_UN)


def test_up_refuses_cleanly_when_another_holds_the_lock_too_long(held_lock: None) -> None:
    # Stopping needs the lock as well: it waits, then gives up the same way.
    refused = run(str(CLUSTER), "stop", env={"CLUSTER_LOCK_WAIT": "1"}, timeout=120)
    assert refused.returncode != 0
    done = run(str(CLUSTER), "up", env={"CLUSTER_LOCK_WAIT": "2"}, timeout=120)
    assert done.returncode != 0
    assert f"(pid {os.getpid()}: test_cluster_lifecycle) after 2s; gave up, nothing was changed" in done.stderr
    assert "starting" not in done.stderr, done.stderr
    assert "building" not in done.stderr, done.stderr
    assert components_running() == COMPONENTS, "the running cluster was left alone"


# ------------------------------------------------------------------------------------------ a failed up


def test_a_failed_up_stops_what_it_started() -> None:
    stop()
    # No time to become Ready: up fails after it started every process up to the kubelet.
    done = run(str(CLUSTER), "up", env={"CLUSTER_UP_TIMEOUT": "0"})
    assert done.returncode != 0
    assert "node goapp-local Ready" in done.stderr, done.stderr[-3000:]
    assert "not ready after 0s" in done.stderr
    assert "up failed: stopping what it started: registry etcd containerd kube-apiserver" in done.stderr
    assert components_running() == []
    assert cluster_processes() == []


# ------------------------------------------------------------------------------------------ certificates


def expires_within(pem: str, days: int) -> bool:
    done = subprocess.run(
        ["openssl", "x509", "-noout", "-checkend", str(days * 86400)], input=pem, capture_output=True, text=True
    )
    return done.returncode != 0


def reissue_for_one_day(name: str) -> None:
    """Re-signs a certificate of the cluster with its own key and extensions, valid one more day."""
    pki = STATE / "pki"
    with tempfile.TemporaryDirectory() as scratch:
        csr = f"{scratch}/{name}.csr"
        sh("openssl", "x509", "-x509toreq", "-in", f"{pki}/{name}.crt", "-signkey", f"{pki}/{name}.key",
           "-copy_extensions", "copyall", "-out", csr)  # fmt: skip
        sh("openssl", "x509", "-req", "-in", csr, "-CA", f"{pki}/ca.crt", "-CAkey", f"{pki}/ca.key", "-days", "1",
           "-copy_extensions", "copyall", "-out", f"{pki}/{name}.crt")  # fmt: skip


def embedded_client_cert(kubeconfig: Path) -> str:
    (data,) = re.findall(r"client-certificate-data: (\S+)", kubeconfig.read_text())
    return base64.b64decode(data).decode()


def test_up_renews_certificates_that_near_expiry_and_restarts_their_users() -> None:
    sh(str(CLUSTER), "up")
    scheduler_pid = (STATE / "run/kube-scheduler.pid").read_text()
    for name in ("apiserver", "scheduler"):
        reissue_for_one_day(name)
        assert expires_within((STATE / f"pki/{name}.crt").read_text(), 30)
    done = run(str(CLUSTER), "up")
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("apiserver", "scheduler"):
        assert f"renewing certificate {name} (it expires" in done.stderr, done.stderr[-3000:]
    # What the running processes use now: the API server's served certificate, the scheduler's kubeconfig.
    served = ssl.get_server_certificate(("127.0.0.1", 6443))
    assert not expires_within(served, 300), "the API server still serves the old certificate"
    assert not expires_within(embedded_client_cert(STATE / "scheduler.kubeconfig"), 300)
    assert (STATE / "run/kube-scheduler.pid").read_text() != scheduler_pid, "the scheduler was not restarted"
    assert components_running() == COMPONENTS


# ------------------------------------------------------------------------------------------ delete


COUNTERS = re.compile(r" \[\d+:\d+\]$")


def iptables_rules() -> list[str]:
    rules = []
    for tool in ("iptables-save", "ip6tables-save"):
        for table in ("filter", "nat", "mangle", "raw"):
            for line in run(tool, "-t", table, timeout=60).stdout.splitlines():
                # Docker's own chains change with its containers; they are not the cluster's.
                if line.startswith("#") or "DOCKER" in line or "docker0" in line:
                    continue
                rules.append(f"{tool} {table} {COUNTERS.sub('', line)}")
    return rules


# Settings of interfaces that come and go, and the kernel's counters.
NOT_SETTINGS = re.compile(
    r"^net/ipv[46]/(conf|neigh)/(?!all/|default/|lo/)|^(fs/binfmt_misc|dev|kernel/random|fs/quota)/"
    r"|^(net/netfilter/nf_conntrack_count|kernel/ns_last_pid|kernel/pty/nr|fs/(file-nr|inode-nr|inode-state|dentry-state|aio-nr))$"
)


def sysctls() -> dict[str, str]:
    values = {}
    for path in Path("/proc/sys").rglob("*"):
        key = str(path.relative_to("/proc/sys"))
        if NOT_SETTINGS.search(key) or not path.is_file():
            continue
        try:
            values[key] = path.read_text().strip()
        except OSError:
            continue
    return values


def host_snapshot() -> dict[str, Any]:
    ancestors = [p for p in STATE.parents if p != Path("/")]
    netns = Path("/run/netns")
    return {
        "iptables": iptables_rules(),
        "ipsets": sorted(run("ipset", "list", "-n", timeout=60).stdout.split()),
        "sysctls": sysctls(),
        "accounts": sorted(
            line.split(":")[0]
            for db in ("passwd", "group")
            for line in run("getent", db, timeout=60).stdout.splitlines()
            if line.startswith("goapp-")
        ),
        "acl": {str(d): run("getfacl", "-cp", str(d), timeout=60).stdout for d in ancestors},
        # Docker's build containers come and go on docker0 meanwhile.
        "links": sorted(
            re.findall(
                r"^\d+: ([^:@]+)",
                "\n".join(
                    line
                    for line in run("ip", "-o", "link", timeout=60).stdout.splitlines()
                    if "master docker0" not in line
                ),
                re.M,
            )
        ),
        "routes": [r for r in run("ip", "-4", "route", timeout=60).stdout.splitlines() if "docker0" not in r],
        "policy-rc.d": Path("/usr/sbin/policy-rc.d").exists(),
        "dirs": {d: Path(d).exists() for d in HOST_DIRS},
        "netns": sorted(os.listdir(netns)) if netns.is_dir() else None,
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods")),
        "mounts": [m for m in Path("/proc/self/mounts").read_text().splitlines() if str(STATE) in m],
        "processes": cluster_processes(),
        "state": STATE.exists(),
    }


def differences(before: dict[str, Any], after: dict[str, Any], volatile: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in before:
        if key == "sysctls":
            changed = {
                k: (before[key][k], after[key].get(k))
                for k in before[key]
                if k not in volatile and before[key][k] != after[key].get(k)
            }
            if changed:
                found[key] = changed
        elif before[key] != after[key]:
            found[key] = (before[key], after[key])
    return found


@pytest.fixture
def foreign_chain() -> Iterator[None]:
    """An iptables chain of another program, with a jump to it: `delete` must leave both alone."""
    jump = ["INPUT", "-m", "comment", "--comment", "another program", "-j", FOREIGN_CHAIN]
    sh("iptables", "-w", "-N", FOREIGN_CHAIN)
    sh("iptables", "-w", "-A", *jump)
    try:
        yield
    finally:
        run("iptables", "-w", "-D", *jump)
        run("iptables", "-w", "-X", FOREIGN_CHAIN)


def test_delete_leaves_the_host_as_it_was_before_up(foreign_chain: None) -> None:
    sh(str(CLUSTER), "delete")
    before = host_snapshot()
    time.sleep(1)
    # Kernel counters and the like change by themselves: measured, then ignored.
    volatile = {k for k, v in sysctls().items() if before["sysctls"].get(k) != v}
    sh(str(CLUSTER), "up")
    during = host_snapshot()
    # The snapshot sees what up changes (so an unchanged snapshot below means undone, not unseen).
    changed = differences(before, during, volatile)
    for aspect in ("iptables", "accounts", "acl", "links", "routes", "processes", "state"):
        assert aspect in changed, f"up changed no {aspect}?"
    assert "goapp-kube-apiserver" in during["accounts"]
    assert any("GOAPP-NODE-INPUT" in rule for rule in during["iptables"])
    sh(str(CLUSTER), "delete")
    after = host_snapshot()
    assert differences(before, after, volatile) == {}
    assert any(FOREIGN_CHAIN in rule for rule in after["iptables"])
