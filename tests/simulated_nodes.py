"""Simulated nodes on the local cluster: add and remove KWOK nodes in given zones.

tools/k8s/cluster.sh runs KWOK's controller, which plays the kubelet of every node annotated
`kwok.x-k8s.io/node: fake` (and of no other): it marks such a node Ready, keeps its lease, and marks the
pods the real scheduler binds to it Running and Ready. Each node comes from tools/k8s/manifests/kwok-node.yaml:
label `topology.kubernetes.io/zone: <zone>`, the taint `kwok.x-k8s.io/node=fake:NoSchedule` (only pods
carrying TOLERATION land there), the label `type: kwok` (metrics-server skips it) and the label
`goapp.local/simulated-set: <set>` (what `remove` selects). Simulated pods get addresses of 10.245.0.0/17,
which the host routes as unreachable: they answer nothing and no packet leaves the machine.

From a test:

    names = simulated_nodes.add({"zone-a": 2, "zone-b": 2, "zone-c": 2}, node_set="spread")
    ...  # pods with `tolerations: [simulated_nodes.TOLERATION]` are scheduled across them
    simulated_nodes.remove("spread")

From a shell (the cluster must be up):

    .venv/bin/python tests/simulated_nodes.py add spread zone-a=2 zone-b=2 zone-c=2
    .venv/bin/python tests/simulated_nodes.py remove spread
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "tools" / "k8s" / "manifests" / "kwok-node.yaml"
SET_LABEL = "goapp.local/simulated-set"
TOLERATION: dict[str, Any] = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
# A node name is a DNS subdomain; ours are "<set>-<zone>-<n>", so set and zone are kept to label-like words.
WORD = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


@dataclass(frozen=True)
class Kubectl:
    """kubectl with the cluster's admin kubeconfig (found through the scripts unless given)."""

    binary: str
    kubeconfig: str

    @classmethod
    def of_local_cluster(cls) -> Kubectl:
        bins = _run([str(REPO_ROOT / "tools" / "k8s" / "build.sh"), "print-bin-dirs"])
        match = re.search(r"^KUBE_BIN=(.+)$", bins, flags=re.M)
        if not match:
            raise RuntimeError(f"tools/k8s/build.sh print-bin-dirs printed no KUBE_BIN:\n{bins}")
        kubeconfig = _run([str(REPO_ROOT / "tools" / "k8s" / "cluster.sh"), "kubeconfig-path"]).strip()
        return cls(str(Path(match[1]) / "kubectl"), kubeconfig)

    def __call__(self, *args: str, stdin: str | None = None, timeout: int = 300) -> str:
        return _run([self.binary, "--kubeconfig", self.kubeconfig, *args], stdin=stdin, timeout=timeout)


def _run(command: Sequence[str], stdin: str | None = None, timeout: int = 300) -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


def _check_word(what: str, value: str) -> None:
    if not WORD.match(value):
        raise ValueError(
            f"{what} {value!r} is not allowed: use 1-32 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )


def node_names(zones: Mapping[str, int], node_set: str) -> list[tuple[str, str]]:
    """(node name, zone) for `count` nodes in each zone: "<set>-<zone>-<i>", i from 1."""
    _check_word("node set", node_set)
    if not zones:
        raise ValueError("zones is empty: name at least one zone with a node count, e.g. {'zone-a': 2}")
    names = []
    for zone, count in zones.items():
        _check_word("zone", zone)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise ValueError(f"node count for zone {zone!r} must be a whole number from 1 to 50, got {count!r}")
        names += [(f"{node_set}-{zone}-{i}", zone) for i in range(1, count + 1)]
    return names


def manifests(zones: Mapping[str, int], node_set: str) -> str:
    """The nodes as one multi-document YAML stream, from tools/k8s/manifests/kwok-node.yaml."""
    template = Template(TEMPLATE.read_text())
    return "---\n".join(
        template.substitute(NAME=name, ZONE=zone, SET=node_set) for name, zone in node_names(zones, node_set)
    )


def add(
    zones: Mapping[str, int], node_set: str, kubectl: Kubectl | None = None, timeout_seconds: int = 120
) -> list[str]:
    """Creates the nodes and waits until KWOK reports each Ready; returns their names."""
    kubectl = kubectl or Kubectl.of_local_cluster()
    stream = manifests(zones, node_set)
    names = [name for name, _ in node_names(zones, node_set)]
    kubectl("apply", "-f", "-", stdin=stream)
    kubectl("wait", "--for=condition=Ready", f"--timeout={timeout_seconds}s", *(f"node/{n}" for n in names),
            timeout=timeout_seconds + 30)  # fmt: skip
    return names


def remove(node_set: str, kubectl: Kubectl | None = None, timeout_seconds: int = 120) -> None:
    """Removes the set's nodes: cordoned, their pods deleted (KWOK completes the deletions while the node
    exists), then the nodes. Workloads that recreate their pods should be scaled down or deleted first."""
    _check_word("node set", node_set)
    kubectl = kubectl or Kubectl.of_local_cluster()
    selector = f"{SET_LABEL}={node_set}"
    names = kubectl("get", "nodes", "-l", selector, "-o", "name").split()
    if not names:
        return
    kubectl("cordon", "-l", selector)
    for name in names:
        kubectl("delete", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={name.removeprefix('node/')}",
                f"--timeout={timeout_seconds}s", timeout=timeout_seconds + 30)  # fmt: skip
    kubectl("delete", "nodes", "-l", selector, "--wait=true", f"--timeout={timeout_seconds}s",
            timeout=timeout_seconds + 30)  # fmt: skip


def parse_zones(words: Sequence[str]) -> dict[str, int]:
    """ZONE=COUNT words of the command line."""
    zones: dict[str, int] = {}
    for word in words:
        zone, sep, count = word.partition("=")
        if not sep or not count.isdigit():
            raise ValueError(f"{word!r} is not ZONE=COUNT (for example zone-a=2)")
        zones[zone] = int(count)
    return zones


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Add or remove simulated (KWOK) nodes on the local cluster.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    adding = verbs.add_parser("add", help="add SET's nodes: ZONE=COUNT...")
    adding.add_argument("node_set", metavar="SET")
    adding.add_argument("zones", metavar="ZONE=COUNT", nargs="+")
    removing = verbs.add_parser("remove", help="remove every node of SET")
    removing.add_argument("node_set", metavar="SET")
    args = parser.parse_args(argv)
    try:
        if args.verb == "add":
            print("\n".join(add(parse_zones(args.zones), args.node_set)))
        else:
            remove(args.node_set)
    except (ValueError, RuntimeError) as error:
        print(f"simulated_nodes: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
