"""tests/simulated_nodes.py without a cluster: the nodes it renders are the ones KWOK manages and the scheduler
keeps apart, and bad input is refused by name. The cluster side is in test_cluster_addons.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

import simulated_nodes


def rendered(zones: dict[str, int], node_set: str = "spread") -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(simulated_nodes.manifests(zones, node_set)))


def test_each_zone_gets_its_count_of_nodes_managed_by_kwok_and_tainted() -> None:
    nodes = rendered({"zone-a": 2, "zone-b": 1})
    assert [n["metadata"]["name"] for n in nodes] == ["spread-zone-a-1", "spread-zone-a-2", "spread-zone-b-1"]
    for node, zone in zip(nodes, ["zone-a", "zone-a", "zone-b"], strict=True):
        assert node["kind"] == "Node"
        # KWOK's controller is started with this annotation selector (tools/k8s/config/kwok-config.yaml).
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        labels = node["metadata"]["labels"]
        assert labels["topology.kubernetes.io/zone"] == zone
        assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert labels[simulated_nodes.SET_LABEL] == "spread"
        assert labels["type"] == "kwok"  # metrics-server's --node-selector 'type!=kwok'
        # Every resource the program's pods request, or the scheduler keeps them Pending.
        assert set(node["status"]["allocatable"]) >= {"cpu", "memory", "ephemeral-storage", "pods"}
        (taint,) = node["spec"]["taints"]
        assert {k: taint[k] for k in ("key", "effect")} == {k: simulated_nodes.TOLERATION[k] for k in ("key", "effect")}


def test_the_controller_and_metrics_server_select_what_the_template_sets() -> None:
    kwok = yaml.safe_load((simulated_nodes.REPO_ROOT / "tools/k8s/config/kwok-config.yaml").read_text())
    assert kwok["options"]["manageNodesWithAnnotationSelector"] == "kwok.x-k8s.io/node=fake"
    cluster_sh = (simulated_nodes.REPO_ROOT / "tools/k8s/cluster.sh").read_text()
    assert "--node-selector 'type!=kwok'" in cluster_sh


@pytest.mark.parametrize(
    ("zones", "node_set", "message"),
    [
        ({}, "spread", "zones is empty"),
        ({"Zone_A": 1}, "spread", "zone 'Zone_A' is not allowed"),
        ({"zone-a": 0}, "spread", "node count for zone 'zone-a' must be a whole number from 1 to 50, got 0"),
        ({"zone-a": 51}, "spread", "got 51"),
        ({"zone-a": True}, "spread", "got True"),
        ({"zone-a": 1}, "-spread", "node set '-spread' is not allowed"),
    ],
)
def test_bad_input_is_refused_by_name(zones: dict[str, int], node_set: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulated_nodes.manifests(zones, node_set)


def test_the_command_line_takes_zone_equals_count() -> None:
    assert simulated_nodes.parse_zones(["zone-a=2", "zone-b=3"]) == {"zone-a": 2, "zone-b": 3}
    with pytest.raises(ValueError, match="'zone-a' is not ZONE=COUNT"):
        simulated_nodes.parse_zones(["zone-a"])
    assert simulated_nodes.main(["add", "spread", "zone-a=x"]) == 1
