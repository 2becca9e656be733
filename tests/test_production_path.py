"""What production needs around the pods: the way in, a canary, spread, autoscaling behaviour, monitoring and
live configuration — each a component composed per stack, under Pulumi's mocks."""

from __future__ import annotations

from typing import Any

import pytest

import harness
from harness import FAKE_DIGEST, Run
from infra.components.web_deployment import REVISION_ANNOTATION

BASE: dict[str, Any] = {
    "goapp:namespace": "shop",
    "goapp:image": {"repository": "registry.example.com/goapp", "tag": "1.0.0"},
    "goapp:env": {"APP_MESSAGE": "hello", "LOG_LEVEL": "info"},
    "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteMany"},
}
ROUTED = {
    **BASE,
    "goapp:url": "https://goapp.example.com/shop",
    "goapp:exposure": {"kind": "httpRoute", "gateway": {"name": "public", "namespace": "traefik", "listener": "https"}},
}
CANARY_DIGEST = "sha256:" + "cd" * 32

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"


def run(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Run:
    return harness.run(config, monkeypatch=monkeypatch)


def refused(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    import pulumi

    mocks = harness.RecordingMocks(preview=False)
    with pytest.raises(pulumi.RunError) as caught:
        harness.run(config, monkeypatch=monkeypatch, mocks=mocks)
    assert mocks.resources == [], "a refused stack registers nothing"
    return str(caught.value)


def by_name(result: Run, typ: str) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in result.mocks.of_type(typ)}


# --- the way in ------------------------------------------------------------------------------------------


def test_a_url_nothing_routes_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused({**BASE, "goapp:url": "https://goapp.example.com"}, monkeypatch)
    assert "goapp:url: nothing routes https://goapp.example.com to the pods" in message
    node_port = {
        **BASE,
        "goapp:url": "http://127.0.0.1:30099",
        "goapp:service": {"type": "NodePort", "nodePort": 30080},
    }
    assert "goapp:url: port 30099 of http://127.0.0.1:30099 is not the Service's nodePort (30080)" in refused(
        node_port, monkeypatch
    )


@pytest.mark.parametrize(
    ("exposure", "url", "needle"),
    [
        ({"kind": "ingress", "className": "traefik"}, "https://a.example.com", "goapp:exposure.tls: required"),
        (
            {"kind": "httpRoute", "gateway": {"name": "public"}},
            "https://a.example.com",
            "goapp:exposure.gateway.listener",
        ),
        (
            {"kind": "ingress", "tls": {"secretName": "a-tls"}},
            "http://a.example.com",
            "goapp:exposure.tls: the URL http://a.example.com is plain http",
        ),
        ({"kind": "httpRoute"}, "https://a.example.com", "goapp:exposure.gateway: required for kind httpRoute"),
        (
            {"kind": "httpRoute", "gateway": {"name": "g", "listener": "https"}, "className": "x"},
            "https://a.example.com",
            "goapp:exposure.className: only for kind ingress",
        ),
        (
            {"kind": "ingress", "gateway": {"name": "g"}},
            "http://a.example.com",
            "goapp:exposure.gateway: only for kind httpRoute",
        ),
        ({"kind": "service"}, "http://a.example.com", "goapp:exposure.kind"),
    ],
)
def test_exposure_that_would_not_serve_the_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, exposure: dict[str, Any], url: str, needle: str
) -> None:
    assert needle in refused({**BASE, "goapp:url": url, "goapp:exposure": exposure}, monkeypatch)


def test_an_ingress_routes_host_and_path_with_tls_from_cert_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    exposure = {
        "kind": "ingress",
        "className": "traefik",
        "tls": {"secretName": "goapp-tls", "clusterIssuer": "letsencrypt"},
    }
    result = run({**BASE, "goapp:url": "https://goapp.example.com/api/", "goapp:exposure": exposure}, monkeypatch)
    ingress = result.mocks.one(INGRESS).inputs
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["metadata"]["namespace"] == "shop"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "traefik"
    assert spec["tls"] == [{"hosts": ["goapp.example.com"], "secretName": "goapp-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "goapp.example.com"
    (path,) = rule["http"]["paths"]
    assert path == {
        "path": "/api",
        "pathType": "Prefix",
        "backend": {"service": {"name": "goapp", "port": {"name": "http"}}},
    }


def test_an_http_route_attaches_to_the_named_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(ROUTED, monkeypatch)
    route = result.mocks.one(ROUTE).inputs
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == "shop"
    spec = route["spec"]
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "traefik",
            "sectionName": "https",
        }
    ]
    assert spec["hostnames"] == ["goapp.example.com"]
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/shop"}}]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "goapp", "port": 80, "weight": 100}]
    assert result.mocks.of_type(INGRESS) == []


def test_a_route_to_an_address_names_no_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes never name an IP literal; a loopback URL routes every host the Gateway listens for."""
    config = {
        **ROUTED,
        "goapp:url": "http://127.0.0.1:8000",
        "goapp:exposure": {"kind": "httpRoute", "gateway": {"name": "local"}},
    }
    spec = run(config, monkeypatch).mocks.one(ROUTE).inputs["spec"]
    assert "hostnames" not in spec
    assert spec["rules"][0]["matches"][0]["path"]["value"] == "/"


# --- canary ----------------------------------------------------------------------------------------------


def canary_stack(**canary: Any) -> dict[str, Any]:
    return {**ROUTED, "goapp:canary": {"weight": 20, "image": CANARY_DIGEST, **canary}}


def test_a_canary_is_a_second_deployment_and_service_with_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(canary_stack(env={"APP_MESSAGE": "canary"}), monkeypatch)
    deployments = by_name(result, DEPLOYMENT)
    assert set(deployments) == {"goapp", "goapp-canary"}
    stable, canary = deployments["goapp"], deployments["goapp-canary"]
    assert canary["spec"]["replicas"] == 1
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.example.com/goapp@{CANARY_DIGEST}"
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.example.com/goapp@{FAKE_DIGEST}"
    # The same volume: both write the same notes.
    claims = {
        d["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] for d in deployments.values()
    }
    assert claims == {"goapp-data"}
    services = by_name(result, SERVICE)
    assert services["goapp"]["spec"]["selector"] != services["goapp-canary"]["spec"]["selector"]
    assert services["goapp-canary"]["spec"]["selector"] == canary["spec"]["selector"]["matchLabels"]
    assert set(by_name(result, NETPOL)) == {"goapp", "goapp-canary"}
    config_maps = by_name(result, CONFIG_MAP)
    assert config_maps["goapp-canary-env"]["data"] == {"APP_MESSAGE": "canary", "LOG_LEVEL": "info"}
    assert config_maps["goapp-env"]["data"] == {"APP_MESSAGE": "hello", "LOG_LEVEL": "info"}
    (rule,) = result.mocks.one(ROUTE).inputs["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("goapp", 80), ("goapp-canary", 20)]


def test_promotion_makes_the_canary_the_stable_one(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(canary_stack(weight=0, env={"APP_MESSAGE": "canary"}, promote=True), monkeypatch)
    deployments = by_name(result, DEPLOYMENT)
    image = f"registry.example.com/goapp@{CANARY_DIGEST}"
    assert deployments["goapp"]["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert by_name(result, CONFIG_MAP)["goapp-env"]["data"]["APP_MESSAGE"] == "canary"
    (rule,) = result.mocks.one(ROUTE).inputs["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("goapp", 100), ("goapp-canary", 0)]


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (
            {**BASE, "goapp:canary": {"weight": 10, "image": CANARY_DIGEST}},
            "goapp:canary: needs goapp:exposure.kind httpRoute",
        ),
        (canary_stack(weight=101), "goapp:canary.weight"),
        (canary_stack(image=None), "goapp:canary.image: set image"),
        (canary_stack(promote=True), "goapp:canary.weight: got 20; must be 0 with promote: true"),
        (canary_stack(image="latest"), "goapp:canary.image"),
        (canary_stack(env={"PORT": "1"}), "goapp:canary.env.PORT: PORT is derived"),
        (
            {**canary_stack(), "goapp:storage": {"accessMode": "ReadWriteOncePod"}},
            "goapp:canary: the volume (ReadWriteOncePod) admits one pod",
        ),
    ],
)
def test_a_canary_that_cannot_work_is_refused(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], needle: str
) -> None:
    if config.get("goapp:canary", {}).get("image", "x") is None:
        config["goapp:canary"] = {k: v for k, v in config["goapp:canary"].items() if k != "image"}
    assert needle in refused(config, monkeypatch)


# --- spread, autoscaling behaviour -------------------------------------------------------------------------


def test_pods_spread_over_nodes_and_zones_when_more_than_one_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    scaled = {
        **BASE,
        "goapp:autoscaling": {"minReplicas": 2, "maxReplicas": 5},
        "goapp:spread": {"zone": "DoNotSchedule"},
    }
    deployment = run(scaled, monkeypatch).mocks.one(DEPLOYMENT).inputs
    constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert [(c["topologyKey"], c["whenUnsatisfiable"], c["maxSkew"]) for c in constraints] == [
        ("kubernetes.io/hostname", "ScheduleAnyway", 1),
        ("topology.kubernetes.io/zone", "DoNotSchedule", 1),
    ]
    for constraint in constraints:
        assert constraint["labelSelector"] == {"matchLabels": selector}
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]
        assert constraint["nodeTaintsPolicy"] == "Honor", "a drained node is no domain to balance against"
    single = run(BASE, monkeypatch).mocks.one(DEPLOYMENT).inputs
    assert "topologySpreadConstraints" not in single["spec"]["template"]["spec"], "one pod has nothing to spread"


def test_the_autoscaler_scales_up_fast_and_down_slowly_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    scaled = {**BASE, "goapp:autoscaling": {"minReplicas": 2, "maxReplicas": 5}}
    behavior = run(scaled, monkeypatch).mocks.one(HPA).inputs["spec"]["behavior"]
    assert behavior["scaleUp"] == {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 60},
            {"type": "Percent", "value": 100, "periodSeconds": 60},
        ],
    }
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 60},
        {"type": "Percent", "value": 10, "periodSeconds": 60},
    ]
    quick = {
        **BASE,
        "goapp:autoscaling": {
            **scaled["goapp:autoscaling"],
            "scaleDown": {"stabilizationSeconds": 15, "podsPerMinute": 5, "percentPerMinute": 100},
        },
    }
    assert (
        run(quick, monkeypatch).mocks.one(HPA).inputs["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
        == 15
    )
    bad = {
        **BASE,
        "goapp:autoscaling": {
            **scaled["goapp:autoscaling"],
            "scaleDown": {"stabilizationSeconds": 7200, "podsPerMinute": 1, "percentPerMinute": 10},
        },
    }
    assert "goapp:autoscaling.scaleDown.stabilizationSeconds" in refused(bad, monkeypatch)


# --- monitoring ------------------------------------------------------------------------------------------


def test_a_service_monitor_when_the_stack_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        **BASE,
        "goapp:monitoring": {"serviceMonitor": True, "interval": "15s", "labels": {"release": "prometheus"}},
    }
    result = run(config, monkeypatch)
    monitor = result.mocks.one(MONITOR).inputs
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["namespace"] == "shop"
    service_labels = result.mocks.one(SERVICE).inputs["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s", "scheme": "http"}]
    assert run(BASE, monkeypatch).mocks.of_type(MONITOR) == []
    annotations = result.mocks.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true", "annotation-based setups keep working"
    assert "goapp:monitoring.labels: only used with serviceMonitor: true" in refused(
        {**BASE, "goapp:monitoring": {"labels": {"a": "b"}}}, monkeypatch
    )


# --- live configuration ----------------------------------------------------------------------------------


LIVE = {**BASE, "goapp:liveConfig": ["APP_MESSAGE"]}


def revision(result: Run) -> str:
    value: str = result.mocks.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]
    return value


def test_live_settings_are_a_mounted_file_instead_of_env(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(LIVE, monkeypatch)
    config_maps = by_name(result, CONFIG_MAP)
    assert config_maps["goapp-env"]["data"] == {"LOG_LEVEL": "info"}
    assert config_maps["goapp-live"]["data"] == {"live.env": "APP_MESSAGE=hello\n"}
    pod = result.mocks.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {e["name"]: e["value"] for e in container["env"]}["CONFIG_FILE"] == "/etc/goapp/live/live.env"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "live-config")
    assert mount == {"name": "live-config", "mountPath": "/etc/goapp/live", "readOnly": True}, (
        "whole volume, no subPath"
    )
    volume = next(v for v in pod["volumes"] if v["name"] == "live-config")
    assert volume["configMap"]["name"] == "goapp-live"


def test_a_live_change_does_not_roll_the_pods_but_any_other_does(monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = revision(run(LIVE, monkeypatch))
    changed_live = {**LIVE, "goapp:env": {**BASE["goapp:env"], "APP_MESSAGE": "changed live"}}
    result = run(changed_live, monkeypatch)
    assert revision(result) == baseline, "a live setting changes the file, not the pods"
    assert by_name(result, CONFIG_MAP)["goapp-live"]["data"] == {"live.env": "APP_MESSAGE=changed live\n"}
    changed_env = {**LIVE, "goapp:env": {**BASE["goapp:env"], "LOG_LEVEL": "debug"}}
    assert revision(run(changed_env, monkeypatch)) != baseline
    assert revision(run({**BASE, "goapp:env": changed_live["goapp:env"]}, monkeypatch)) != revision(
        run(BASE, monkeypatch)
    )


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({**BASE, "goapp:liveConfig": ["PORT"]}, "goapp:liveConfig.0"),
        (
            {**BASE, "goapp:env": {"LOG_LEVEL": "info"}, "goapp:liveConfig": ["APP_MESSAGE"]},
            "goapp:liveConfig: APP_MESSAGE is not in goapp:env",
        ),
        (
            {**BASE, "goapp:env": {"CONFIG_FILE": "/x"}},
            "goapp:env.CONFIG_FILE: CONFIG_FILE is derived from goapp:liveConfig",
        ),
        (
            {**LIVE, "goapp:env": {"APP_MESSAGE": "two\nlines"}},
            "goapp:env.APP_MESSAGE: a live setting is one line of its file",
        ),
    ],
)
def test_live_settings_that_cannot_work_are_refused(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], needle: str
) -> None:
    assert needle in refused(config, monkeypatch)
