"""The way in, on the real cluster: `make up`'s URL through the ingress controller, a canary split by weight and
promoted under traffic, and a live configuration change served without restarting a pod."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster import NOTES_TOKEN, Cluster, Deployed, deployed, eventually, local_config, message, running_cluster, sh
from engine import REPO_ROOT
from traffic import Traffic

pytestmark = pytest.mark.cluster

CANARY_NAMESPACE = "goapp-canary"
LIVE_NAMESPACE = "goapp-live"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


def test_the_url_make_up_prints_answers_through_the_ingress_controller(cluster: Cluster, tmp_path: Path) -> None:
    """`make up`'s own path (ops.up) for the committed local stack, with a private state backend."""
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{tmp_path}/state"}
    (tmp_path / "state").mkdir()
    try:
        printed = sh(sys.executable, "-m", "ops.up", "local", env=env, timeout=1800)
        found = re.search(r"^goapp \(local\) is ready at (\S+)$", printed, re.M)
        assert found, printed[-2000:]
        url = found[1]
        assert url == "http://127.0.0.1:8000"
        listening = sh("ss", "-ltnpH", "sport = :8000")
        assert '"traefik"' in listening, f"127.0.0.1:8000 is not the ingress controller: {listening}"
        assert message(url) == "Hello from the local stack!"
        assert "Authorization: Bearer $TOKEN" in printed, "the sample note request carries the token"
    finally:
        subprocess.run([sys.executable, "-m", "ops.stack", "down", "local"], cwd=REPO_ROOT, env=env, check=False)
        cluster.kubectl("delete", "namespace", "goapp", "--ignore-not-found", "--wait=true", check=False)


def canary_config(cluster: Cluster, weight: int, promote: bool = False) -> dict[str, Any]:
    config = local_config(cluster, CANARY_NAMESPACE, 30084)
    config["goapp:replicas"] = 2
    config["goapp:canary"] = {"weight": weight, "env": {"APP_MESSAGE": "Hello from the canary!"}, "promote": promote}
    return config


def shares(url: str, requests: int) -> Counter[str]:
    return Counter(message(url) for _ in range(requests))


def test_a_canary_gets_its_share_and_promotion_fails_no_request(cluster: Cluster, tmp_path: Path) -> None:
    with deployed(tmp_path, "canary", cluster, canary_config(cluster, weight=30)) as stack:
        eventually(lambda: "Hello from the canary!" in shares(stack.url, 20), "the canary to be routed")
        counted = shares(stack.url, 1000)
        share = 100 * counted["Hello from the canary!"] / 1000
        print(f"canary share of 1000 requests: {share:.1f} % (weight 30); {dict(counted)}")
        assert set(counted) == {"Hello from the local stack!", "Hello from the canary!"}
        assert abs(share - 30) <= 5

        # Promotion, then removing the canary, both under traffic: no request may fail.
        with Traffic(stack.url, NOTES_TOKEN, slow_seconds=2.0, seconds=900) as load:
            stack.change(
                lambda config: config.update({"goapp:canary": canary_config(cluster, 0, True)["goapp:canary"]})
            )
            stack.up()
            eventually(
                lambda: set(shares(stack.url, 50)) == {"Hello from the canary!"}, "the stable one to be the canary"
            )
            stack.change(lambda config: config.pop("goapp:canary"))
            stack.change(lambda config: config["goapp:env"].update(APP_MESSAGE="Hello from the canary!"))
            stack.up()
        report = load.report
        print(f"promotion under traffic: {report.summary()}")
        assert report.failed == 0, report.failures[:10]
        assert report.lost == [], report.lost[:10]
        assert report.requests["hello"] > 100
        assert set(shares(stack.url, 50)) == {"Hello from the canary!"}
        names = {d["metadata"]["name"] for d in cluster.json("get", "deployments", "-n", CANARY_NAMESPACE)["items"]}
        assert names == {"goapp"}, "the canary deployment is gone"


def test_a_live_setting_is_served_without_restarting_a_pod(cluster: Cluster, tmp_path: Path) -> None:
    config = local_config(cluster, LIVE_NAMESPACE, 30085)
    config["goapp:liveConfig"] = ["APP_MESSAGE"]
    with deployed(tmp_path, "live", cluster, config) as stack:
        assert message(stack.url) == "Hello from the local stack!"
        before = pod_state(stack)
        stack.change(lambda config: config["goapp:env"].update(APP_MESSAGE="Changed while running"))
        stack.up()
        # The kubelet refreshes a ConfigMap volume within about a minute; goapp applies the file when it changes.
        eventually(lambda: message(stack.url) == "Changed while running", "the live change to be served", timeout=180)
        assert pod_state(stack) == before, "no pod was replaced or restarted"


def pod_state(stack: Deployed) -> dict[str, int]:
    """Each pod's uid and how often its container restarted."""
    return {
        pod["metadata"]["uid"]: sum(status["restartCount"] for status in pod["status"]["containerStatuses"])
        for pod in stack.pods()
    }
