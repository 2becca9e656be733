"""The configuration contract: every rule rejects bad input with a message naming the key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness import FAKE_DIGEST, engine_config, plaintext
from infra.settings import ConfigError, RawStackConfig, Run, Settings, load_settings
from infra.stack_config import stack_file_facts

VALID: dict[str, Any] = {
    "goapp:namespace": "goapp-test",
    "goapp:image": {"repository": "127.0.0.1:5000/goapp", "tag": "1.0.0", "push": True},
    "goapp:replicas": 2,
    "goapp:port": 8080,
    "goapp:env": {"APP_MESSAGE": "hi", "LOG_LEVEL": "info"},
    "goapp:secretEnv": {"API_TOKEN": {"secure": "v1:abc"}},
    "goapp:rolloutKey": {"secure": "v1:key"},
    "goapp:resources": {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "128Mi"},
    },
    "goapp:storage": {"size": "1Gi", "accessMode": "ReadWriteMany", "storageClass": "nfs"},
    "goapp:autoscaling": {"minReplicas": 2, "maxReplicas": 5, "cpuUtilization": 70},
}


PREVIEW = Run(dry_run=True)


def load(
    config: dict[str, Any],
    environ: dict[str, str] | None = None,
    *,
    run: Run = PREVIEW,
    stack_file: dict[str, Any] | None = None,
) -> Settings:
    """Load `config` as the program would from a stack file holding it (plus `stack_file`'s other keys)."""
    values, secret_keys = engine_config(config)
    facts = stack_file_facts({"config": config, **(stack_file or {})})
    return load_settings(
        RawStackConfig(
            values=values,
            secret_keys=frozenset(secret_keys),
            secure_paths=facts.secure_paths,
            passphrase_secrets=facts.passphrase_secrets,
        ),
        project="goapp",
        stack="test",
        environ=environ or {},
        run=run,
    )


def with_change(path: str, value: Any) -> dict[str, Any]:
    """VALID with one key replaced (value=DELETE removes it). Path: 'goapp:key.sub.sub'."""
    config = copy.deepcopy(VALID)
    key, *rest = path.split(".")
    if not rest:
        if value is DELETE:
            config.pop(key, None)
        else:
            config[key] = value
        return config
    node = config.setdefault(key, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(rest[-1], None)
    else:
        node[rest[-1]] = value
    return config


DELETE = object()


def problems_of(config: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(config, environ)
    return caught.value.problems


def test_valid_config_loads_with_typed_values() -> None:
    settings = load(VALID)
    assert settings.config.namespace == "goapp-test"
    assert settings.config.replicas == 2
    assert settings.config.autoscaling is not None
    assert settings.config.autoscaling.max_replicas == 5
    assert settings.config.secret_env["API_TOKEN"].get_secret_value() == plaintext("v1:abc")
    assert settings.config.storage.access_mode == "ReadWriteMany"


def test_defaults_fill_optional_keys() -> None:
    minimal = {"goapp:namespace": "ns", "goapp:image": {"repository": "example.com/goapp"}}
    config = load(minimal).config
    assert config.port == 8080
    assert config.replicas == 1
    assert config.resources.limits.memory == "128Mi"
    assert config.storage.access_mode == "ReadWriteOnce"
    assert config.autoscaling is None
    assert config.image.push is True
    assert config.image.platform == "linux/amd64"


BAD_INPUTS = [
    # (path, value, key named in the message, words of what is allowed)
    ("goapp:namespace", "Goapp_Prod", "goapp:namespace", "DNS-1123 label"),
    ("goapp:namespace", "a" * 64, "goapp:namespace", "at most 63"),
    ("goapp:namespace", DELETE, "goapp:namespace", "required"),
    ("goapp:image", DELETE, "goapp:image", "required"),
    ("goapp:image.repository", "example.com/goapp:1.0", "goapp:image.repository", "without tag or digest"),
    ("goapp:image.repository", "example.com/goapp@sha256:" + "a" * 64, "goapp:image.repository", "without tag"),
    ("goapp:image.repository", "Example.com/Goapp", "goapp:image.repository", "valid repository"),
    ("goapp:image.tag", "latest", "goapp:image.tag", "'latest' is rejected"),
    ("goapp:image.tag", "-bad", "goapp:image.tag", "valid tag"),
    ("goapp:image.push", "maybe", "goapp:image.push", "valid boolean"),
    ("goapp:image.platform", "windows/amd64", "goapp:image.platform", "linux/amd64"),
    ("goapp:image.baseImages.go", "golang@sha256", "goapp:image.baseImages.go", "must match"),
    ("goapp:replicas", 0, "goapp:replicas", "greater than or equal to 1"),
    ("goapp:replicas", "three", "goapp:replicas", "valid integer"),
    ("goapp:port", 0, "goapp:port", "greater than or equal to 1"),
    ("goapp:port", 65536, "goapp:port", "less than or equal to 65535"),
    ("goapp:env", {"1BAD": "x"}, "goapp:env.1BAD", "[A-Za-z_][A-Za-z0-9_]*"),
    ("goapp:env", {"BAD-NAME": "x"}, "goapp:env.BAD-NAME", "[A-Za-z_][A-Za-z0-9_]*"),
    ("goapp:env", {"RETRIES": 3}, "goapp:env.RETRIES", "valid string"),
    ("goapp:env", {"PORT": "9090"}, "goapp:env.PORT", "PORT is derived from goapp:port"),
    ("goapp:env", {"API_TOKEN": "plain"}, "goapp:env.API_TOKEN", "also set in goapp:secretEnv"),
    ("goapp:secretEnv", {"bad name": {"secure": "v1:x"}}, "goapp:secretEnv.bad name", "[A-Za-z_]"),
    ("goapp:resources.requests.cpu", "fast", "goapp:resources.requests.cpu", "Kubernetes quantity"),
    ("goapp:resources.limits.memory", "12XB", "goapp:resources.limits.memory", "Kubernetes quantity"),
    ("goapp:resources.limits.memory", "32Mi", "goapp:resources.limits.memory", "at least requests.memory '64Mi'"),
    ("goapp:resources.limits.cpu", "50m", "goapp:resources.limits.cpu", "at least requests.cpu '100m'"),
    ("goapp:resources.requests.memory", DELETE, "goapp:resources.requests.memory", "required"),
    ("goapp:resources.requests.ephemeralStorage", "1Gi", "goapp:resources.limits.ephemeralStorage", "got '256Mi'"),
    ("goapp:resources.limits.ephemeralStorage", "big", "goapp:resources.limits.ephemeralStorage", "quantity"),
    ("goapp:resources.requests.cpu", "-100m", "goapp:resources.requests.cpu", "zero or more"),
    ("goapp:resources.requests.memory", "-1Mi", "goapp:resources.requests.memory", "zero or more"),
    ("goapp:resources.requests.ephemeralStorage", "-1", "goapp:resources.requests.ephemeralStorage", "zero or more"),
    ("goapp:resources.limits.cpu", "0", "goapp:resources.limits.cpu", "greater than zero"),
    ("goapp:resources.limits.memory", "-128Mi", "goapp:resources.limits.memory", "greater than zero"),
    ("goapp:storage.size", "0", "goapp:storage.size", "greater than zero"),
    ("goapp:storage.size", "-1Gi", "goapp:storage.size", "greater than zero"),
    ("goapp:storage.protect", "sometimes", "goapp:storage.protect", "valid boolean"),
    ("goapp:networkPolicy.allowFrom.namespaces", ["Traefik"], "goapp:networkPolicy.allowFrom.namespaces.0", "DNS-1123"),
    ("goapp:networkPolicy.allowFrom.cidrs", ["10.0.0.1/8"], "goapp:networkPolicy.allowFrom.cidrs.0", "host bits"),
    (
        "goapp:networkPolicy.dns",
        {"cidrs": ["10.0.0.0/8"], "namespace": "x"},
        "goapp:networkPolicy.dns.cidrs",
        "not both",
    ),
    ("goapp:networkPolicy.dns", {"namespace": "kube-system"}, "goapp:networkPolicy.dns.podLabels", "required with"),
    ("goapp:rolloutKey", DELETE, "goapp:rolloutKey", "required when goapp:secretEnv is set"),
    ("goapp:storage.size", "lots", "goapp:storage.size", "Kubernetes quantity"),
    ("goapp:storage.accessMode", "ReadWriteAll", "goapp:storage.accessMode", "ReadWriteOncePod"),
    ("goapp:autoscaling.minReplicas", 0, "goapp:autoscaling.minReplicas", "greater than or equal to 1"),
    ("goapp:autoscaling.maxReplicas", 1, "goapp:autoscaling.maxReplicas", "got 1; must be at least minReplicas (2)"),
    ("goapp:autoscaling.cpuUtilization", 101, "goapp:autoscaling.cpuUtilization", "less than or equal to 100"),
    ("goapp:autoscaling.cpuUtilization", 0, "goapp:autoscaling.cpuUtilization", "greater than or equal to 1"),
    ("goapp:service.type", "Ingress", "goapp:service.type", "NodePort"),
    ("goapp:service.nodePort", 80, "goapp:service.nodePort", "greater than or equal to 30000"),
    ("goapp:service.nodePort", 30001, "goapp:service.nodePort", "needs type NodePort or LoadBalancer"),
    ("goapp:shutdown.drainSeconds", -1, "goapp:shutdown.drainSeconds", "greater than or equal to 0"),
    ("goapp:shutdown.timeoutSeconds", 10, "goapp:shutdown.timeoutSeconds", "got 10; must be at least 15"),
    ("goapp:env", {"WRITE_TIMEOUT": "soon"}, "goapp:env.WRITE_TIMEOUT", "a Go duration such as 500ms"),
    ("goapp:url", "goapp.example.com", "goapp:url", "must match"),
]


@pytest.mark.parametrize(("path", "value", "key", "allowed"), BAD_INPUTS, ids=[f"{p}={v!r}" for p, v, *_ in BAD_INPUTS])
def test_bad_input_names_the_key_and_what_is_allowed(path: str, value: Any, key: str, allowed: str) -> None:
    problems = problems_of(with_change(path, value))
    matching = [p for p in problems if p.startswith(f"{key}: ")]
    assert matching, f"no problem starts with {key}: {problems}"
    assert any(allowed in p for p in matching), f"no problem for {key} says {allowed!r}: {matching}"


def test_bad_value_is_quoted_in_the_message() -> None:
    (problem,) = problems_of(with_change("goapp:replicas", 0))
    assert problem == "goapp:replicas: got '0'; Input should be greater than or equal to 1"


def test_every_problem_is_reported_at_once() -> None:
    config = with_change("goapp:replicas", 0)
    config["goapp:namespace"] = "UPPER"
    config["goapp:autoscaling"] = {"minReplicas": 4, "maxReplicas": 2}
    config["goapp:storage"] = {"size": "x"}
    config["goapp:typo"] = 1
    keys = sorted(p.split(": ", 1)[0] for p in problems_of(config))
    assert keys == [
        "goapp:autoscaling.maxReplicas",
        "goapp:namespace",
        "goapp:replicas",
        "goapp:storage.size",
        "goapp:typo",
    ]


def test_unknown_top_level_key_suggests_the_nearest() -> None:
    config = dict(VALID)
    config["goapp:replica"] = 3
    config["goapp:autoscalling"] = {"minReplicas": 1, "maxReplicas": 2}
    problems = problems_of(config)
    assert "goapp:replica: unknown key; did you mean goapp:replicas?" in problems
    assert "goapp:autoscalling: unknown key; did you mean goapp:autoscaling?" in problems


def test_unknown_nested_key_suggests_the_nearest_sibling() -> None:
    problems = problems_of(with_change("goapp:autoscaling.maxReplica", 5))
    assert "goapp:autoscaling.maxReplica: unknown key; did you mean goapp:autoscaling.maxReplicas?" in problems


def test_unknown_key_without_a_near_match_lists_the_known_ones() -> None:
    problems = problems_of(with_change("goapp:storage.zzz", 1))
    assert any(p.startswith("goapp:storage.zzz: unknown key; goapp:storage accepts accessMode") for p in problems)


def test_keys_of_other_namespaces_are_ignored() -> None:
    config = dict(VALID)
    config["kubernetes:context"] = "elsewhere"
    config["aws:region"] = "eu-west-1"
    assert load(config).config.namespace == "goapp-test"


def test_secret_env_must_be_pulumi_secrets() -> None:
    config = with_change("goapp:secretEnv", {"API_TOKEN": "hunter2"})
    problems = problems_of(config)
    assert any(p.startswith("goapp:secretEnv.API_TOKEN: must be a Pulumi secret") for p in problems)
    assert not any("hunter2" in p for p in problems), "a secret value must never be echoed"


def test_a_plain_value_beside_secure_ones_in_secret_env_is_refused() -> None:
    """The engine marks the whole map secret when one value is; the stack file says which value is not."""
    config = with_change("goapp:secretEnv", {"API_TOKEN": {"secure": "v1:abc"}, "DB_PASSWORD": "hunter2"})
    problems = problems_of(config)
    assert problems == [
        "goapp:secretEnv.DB_PASSWORD: must be a Pulumi secret, but the stack file holds it in plaintext; set it with "
        "`pulumi config set --secret --path 'goapp:secretEnv.DB_PASSWORD' VALUE`"
    ]


def test_a_whole_secret_map_counts_as_secret() -> None:
    config = with_change("goapp:secretEnv", {"secure": "v1:whole-map"})
    values, secret_keys = engine_config(config)
    values["goapp:secretEnv"] = '{"API_TOKEN": "x"}'
    facts = stack_file_facts({"config": config})
    raw = RawStackConfig(values=values, secret_keys=frozenset(secret_keys), secure_paths=facts.secure_paths)
    settings = load_settings(raw, project="goapp", stack="test", environ={})
    assert settings.config.secret_env["API_TOKEN"].get_secret_value() == "x"


def test_without_a_stack_file_the_engines_secret_marks_decide() -> None:
    values, secret_keys = engine_config(VALID)
    raw = RawStackConfig(values=values, secret_keys=frozenset(secret_keys), secure_paths=None)
    assert load_settings(raw, project="goapp", stack="test", environ={}).config.secret_env
    unmarked = RawStackConfig(values=values, secret_keys=frozenset(), secure_paths=None)
    with pytest.raises(ConfigError) as caught:
        load_settings(unmarked, project="goapp", stack="test", environ={})
    assert any(p.startswith("goapp:secretEnv.API_TOKEN: must be a Pulumi secret") for p in caught.value.problems)


def test_rollout_key_must_be_long_enough() -> None:
    values, secret_keys = engine_config(VALID)
    values["goapp:rolloutKey"] = "too-short"
    facts = stack_file_facts({"config": VALID})
    raw = RawStackConfig(values=values, secret_keys=frozenset(secret_keys), secure_paths=facts.secure_paths)
    with pytest.raises(ConfigError) as caught:
        load_settings(raw, project="goapp", stack="test", environ={})
    assert caught.value.problems == [
        "goapp:rolloutKey: got <secret>; must be at least 32 characters of randomness, e.g. `openssl rand -base64 32`"
    ]


def test_rollout_key_must_be_a_secret() -> None:
    problems = problems_of(with_change("goapp:rolloutKey", "k" * 40))
    assert any(p.startswith("goapp:rolloutKey: must be a Pulumi secret") for p in problems)
    assert not any("k" * 40 in p for p in problems)


# Each cross-field rule, broken alone: its one problem must start with the full dotted key it is about.
CROSS_FIELD = [
    ("goapp:resources.limits.memory", "32Mi", "goapp:resources.limits.memory"),
    ("goapp:autoscaling.maxReplicas", 1, "goapp:autoscaling.maxReplicas"),
    ("goapp:service.nodePort", 30001, "goapp:service.nodePort"),
    ("goapp:storage.accessMode", "ReadWriteOncePod", "goapp:storage.accessMode"),
    ("goapp:rolloutKey", DELETE, "goapp:rolloutKey"),
    ("goapp:networkPolicy.dns", {"podLabels": {"a": "b"}}, "goapp:networkPolicy.dns.namespace"),
]


@pytest.mark.parametrize(("path", "value", "key"), CROSS_FIELD, ids=[c[0] for c in CROSS_FIELD])
def test_cross_field_errors_start_with_the_full_key(path: str, value: Any, key: str) -> None:
    (problem,) = problems_of(with_change(path, value))
    assert problem.startswith(f"{key}: "), problem


UP = Run(dry_run=False)


def test_up_with_the_empty_passphrase_is_refused_with_the_way_out() -> None:
    (problem,) = problems_of_run(VALID, {"PULUMI_CONFIG_PASSPHRASE": ""}, UP)
    assert problem.startswith("PULUMI_CONFIG_PASSPHRASE: stack 'test' encrypts its secrets with the empty passphrase")
    assert "pulumi stack change-secrets-provider" in problem
    assert "goapp:allowEmptyPassphrase: true" in problem


def test_an_empty_passphrase_file_counts_as_empty(tmp_path: Any) -> None:
    empty = tmp_path / "passphrase"
    empty.write_text("\n")
    assert problems_of_run(VALID, {"PULUMI_CONFIG_PASSPHRASE_FILE": str(empty)}, UP)
    real = tmp_path / "real"
    real.write_text("correct horse battery staple\n")
    assert load(VALID, {"PULUMI_CONFIG_PASSPHRASE_FILE": str(real)}, run=UP).config.namespace == "goapp-test"


@pytest.mark.parametrize(
    ("environ", "run", "config", "stack_file"),
    [
        ({"PULUMI_CONFIG_PASSPHRASE": ""}, Run(dry_run=True), VALID, None),
        (
            {"PULUMI_CONFIG_PASSPHRASE": "", "GOAPP_RENDER_DIR": "/tmp/r", "GOAPP_IMAGE_DIGEST": FAKE_DIGEST},
            UP,
            VALID,
            None,
        ),
        ({"PULUMI_CONFIG_PASSPHRASE": ""}, UP, {**VALID, "goapp:allowEmptyPassphrase": True}, None),
        ({"PULUMI_CONFIG_PASSPHRASE": "s3cret"}, UP, VALID, None),
        ({"PULUMI_CONFIG_PASSPHRASE": ""}, UP, VALID, {"secretsprovider": "awskms://alias/goapp"}),
    ],
    ids=["preview", "render", "opted-out", "real-passphrase", "kms"],
)
def test_the_empty_passphrase_is_fine_where_nothing_real_is_applied(
    environ: dict[str, str], run: Run, config: dict[str, Any], stack_file: dict[str, Any] | None
) -> None:
    assert load(config, environ, run=run, stack_file=stack_file).config.namespace == "goapp-test"


def problems_of_run(config: dict[str, Any], environ: dict[str, str], run: Run) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(config, environ, run=run)
    return caught.value.problems


def test_secret_values_are_never_echoed_in_errors() -> None:
    config = with_change("goapp:secretEnv", {"bad name": {"secure": "v1:x"}})
    assert not any(plaintext("v1:x") in p for p in problems_of(config))


def test_registry_password_must_be_a_secret() -> None:
    registry = {"server": "registry.example.com", "username": "ci", "password": "hunter2"}
    config = with_change("goapp:image.registry", registry)
    problems = problems_of(config)
    assert any(p.startswith("goapp:image.registry.password: must be a Pulumi secret") for p in problems)
    assert not any("hunter2" in p for p in problems)
    secured = with_change("goapp:image.registry", {**registry, "password": {"secure": "v1:x"}})
    assert load(secured).config.image.registry is not None


def test_read_write_once_pod_allows_one_replica_only() -> None:
    config = with_change("goapp:storage.accessMode", "ReadWriteOncePod")
    problems = problems_of(config)
    assert any("ReadWriteOncePod allows a single pod" in p and "up to 5" in p for p in problems)
    single = with_change("goapp:storage.accessMode", "ReadWriteOncePod")
    del single["goapp:autoscaling"]
    single["goapp:replicas"] = 1
    assert load(single).config.storage.access_mode == "ReadWriteOncePod"


def test_read_write_once_with_many_replicas_warns() -> None:
    settings = load(with_change("goapp:storage.accessMode", "ReadWriteOnce"))
    assert any("ReadWriteOnce with up to 5 replicas" in w for w in settings.warnings)
    assert load(VALID).warnings == []


def test_quantities_compare_exactly_across_suffixes() -> None:
    same = with_change(
        "goapp:resources", {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1024Mi"}}
    )
    assert load(same).config.resources.limits.cpu == "500m"


def test_render_mode_needs_a_valid_digest() -> None:
    problems = problems_of(VALID, {"GOAPP_RENDER_DIR": "/tmp/out"})
    assert any(p.startswith("GOAPP_IMAGE_DIGEST: render mode") for p in problems)
    problems = problems_of(VALID, {"GOAPP_IMAGE_DIGEST": "sha256:xyz"})
    assert any(p.startswith("GOAPP_IMAGE_DIGEST: got 'sha256:xyz'") for p in problems)
    settings = load(VALID, {"GOAPP_RENDER_DIR": "/tmp/out", "GOAPP_IMAGE_DIGEST": FAKE_DIGEST})
    assert str(settings.render_dir) == "/tmp/out"
    assert settings.image_digest == FAKE_DIGEST


def test_build_info_comes_from_the_environment() -> None:
    settings = load(VALID, {"GOAPP_VERSION": "1.2.3", "GOAPP_COMMIT": "abc123"})
    assert (settings.build.version, settings.build.commit) == ("1.2.3", "abc123")
    assert load(VALID).build.version == "dev"


def test_grace_period_covers_pre_stop_drain_and_shutdown() -> None:
    config = with_change("goapp:shutdown", {"preStopSeconds": 3, "drainSeconds": 7, "timeoutSeconds": 20})
    shutdown = load(config).config.shutdown
    assert shutdown.grace_period_seconds > 3 + 7 + 20


def test_base_images_may_be_pinned_by_digest() -> None:
    pinned = "golang:1.26-bookworm@sha256:" + "0f" * 32
    config = with_change("goapp:image.baseImages", {"go": pinned, "runtime": "example.com/static:1"})
    assert load(config).config.image.base_images.go == pinned


def test_every_env_problem_is_reported_together() -> None:
    problems = problems_of(with_change("goapp:env", {"1BAD": "x", "PORT": "1", "OK": 3}))
    assert "goapp:env.1BAD: got '1BAD'; names must match [A-Za-z_][A-Za-z0-9_]*" in problems
    assert "goapp:env.PORT: PORT is derived from goapp:port, set that instead" in problems
    assert any(p.startswith("goapp:env.OK: got 3") for p in problems)
    assert not any("[key]" in p for p in problems)


def test_shorter_goapp_timeouts_allow_a_shorter_shutdown() -> None:
    config = with_change("goapp:shutdown", {"timeoutSeconds": 6})
    config["goapp:env"] = {
        **VALID["goapp:env"],
        "READ_TIMEOUT": "6s",
        "READ_HEADER_TIMEOUT": "2s",
        "WRITE_TIMEOUT": "4s",
    }
    assert load(config).config.shutdown.timeout_seconds == 6
    config["goapp:env"]["WRITE_TIMEOUT"] = "4.5s"
    (problem,) = problems_of(config)
    assert problem.startswith("goapp:shutdown.timeoutSeconds: got 6; must be at least 6.5")
