"""Our restricted Pod Security check agrees with Kubernetes' own evaluator.

The policy pack re-implements the restricted standard (policy/goapp_policy/checks.py) so that a preview
refuses a workload before any cluster sees it. The cluster judges pods with k8s.io/pod-security-admission;
gates/tools/psa runs that evaluator, at the cluster's version, on manifests. Both judge every rendered stack
under dist/ (`make gates` renders them) and pod specs derived from each rendered Deployment, broken one way
each: they must agree on every object, and a broken spec must be refused for the reason it was broken.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from goapp_policy import checks
from goapp_policy.manifests import load
from goapp_policy.workloads import Props, pod_spec, type_token

from ops import project

pytestmark = pytest.mark.gates

ROOT = Path(__file__).resolve().parents[2]
GATES = [sys.executable, "-m", "gates.run"]
DIST = ROOT / "dist"
STACKS = project.stacks()

Obj = dict[str, Any]
Key = tuple[str, str, str]


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATES, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,  # a cold cache builds the tool first
        check=False,
    )


@pytest.fixture(scope="module")
def psa() -> Path:
    """The evaluator binary, built by gates/run.py from gates/tools/psa if needed."""
    result = gate("path", "psa")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def run_psa(psa: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(psa), *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def key(obj: Props) -> Key:
    metadata = obj.get("metadata") or {}
    return (str(obj["kind"]), str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def kubernetes_verdicts(psa: Path, *args: str, stdin: str | None = None) -> dict[Key, Obj]:
    """Kubernetes' verdict on every pod-bearing object, by kind, namespace and name."""
    result = run_psa(psa, "-format", "json", *args, stdin=stdin)
    assert result.returncode in (0, 1), f"psa could not judge its input (exit {result.returncode}): {result.stderr}"
    verdicts = {(v["kind"], v["namespace"], v["name"]): v for v in json.loads(result.stdout)}
    assert (result.returncode == 1) == any(not v["allowed"] for v in verdicts.values()), result.stderr
    return verdicts


def our_messages(obj: Props) -> list[str]:
    return checks.pod_security(type_token(str(obj["apiVersion"]), str(obj["kind"])), obj)


def rendered(stack: str) -> list[Obj]:
    """Every object rendered for stack, read the way the policy gate reads it."""
    directory = DIST / stack
    assert directory.is_dir(), f"{directory} is missing: render every stack first (make render-all)"
    return [dict(obj) for _, obj in load([directory])]


def pod_bearing(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if pod_spec(type_token(str(o["apiVersion"]), str(o["kind"])), o) is not None]


# --- every rendered stack ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_both_evaluators_allow_every_rendered_pod_template(psa: Path, stack: str) -> None:
    objects = pod_bearing(rendered(stack))
    assert any(o["kind"] == "Deployment" for o in objects), f"dist/{stack} renders no Deployment"
    theirs = kubernetes_verdicts(psa, str(DIST / stack))
    # Both read the same objects as pod-bearing: none escapes either check.
    assert set(theirs) == {key(o) for o in objects}
    judged = {key(o): (our_messages(o), theirs[key(o)]) for o in objects}
    refused = {k: (ours, v["details"]) for k, (ours, v) in judged.items() if ours or not v["allowed"]}
    assert refused == {}, f"dist/{stack}: restricted Pod Security refused by ours or Kubernetes: {refused}"


# --- pod specs broken one way each -------------------------------------------------------------------------

Mutation = Callable[[Obj], None]
"""Changes a Deployment's pod template in place."""


def _pod(template: Obj) -> Obj:
    pod: Obj = template["spec"]
    return pod


def _first(template: Obj) -> Obj:
    container: Obj = _pod(template)["containers"][0]
    return container


def _security(item: Obj) -> Obj:
    security: Obj = item.setdefault("securityContext", {})
    return security


def _every_container(pod: Obj) -> list[Obj]:
    return [c for field in ("initContainers", "containers") for c in pod.get(field) or []]


def _set(**fields: Any) -> Mutation:
    """Set securityContext fields on the first container."""
    return lambda template: _security(_first(template)).update(fields)


def _set_pod(**fields: Any) -> Mutation:
    """Set securityContext fields on the pod."""
    return lambda template: _security(_pod(template)).update(fields)


def _both(pod_fields: Obj, container_fields: Obj) -> Mutation:
    """A pod-level value under a container that overrides it."""

    def mutate(template: Obj) -> None:
        _security(_pod(template)).update(pod_fields)
        _security(_first(template)).update(container_fields)

    return mutate


def _unset(field: str, pod_too: bool = False) -> Mutation:
    """Remove a securityContext field from every container (and the pod)."""

    def mutate(template: Obj) -> None:
        pod = _pod(template)
        for item in _every_container(pod) + ([pod] if pod_too else []):
            _security(item).pop(field, None)

    return mutate


def _from_pod_only(field: str, value: Any) -> Mutation:
    """The pod sets a field and no container does: every container inherits it."""

    def mutate(template: Obj) -> None:
        _unset(field)(template)
        _security(_pod(template))[field] = value

    return mutate


def _spec(**fields: Any) -> Mutation:
    return lambda template: _pod(template).update(fields)


def _volume(volume: Obj) -> Mutation:
    return lambda template: _pod(template).setdefault("volumes", []).append(volume)


def _annotate(name: str, value: str) -> Mutation:
    return lambda template: template.setdefault("metadata", {}).setdefault("annotations", {}).update({name: value})


def _add_port(port: Obj) -> Mutation:
    return lambda template: _first(template).setdefault("ports", []).append(port)


def _with(container_field: str, value: Any) -> Mutation:
    return lambda template: _first(template).update({container_field: value})


def _privileged_init_container(template: Obj) -> None:
    container = _first(template)
    init = {k: copy.deepcopy(v) for k, v in container.items() if not k.endswith("Probe") and k != "lifecycle"}
    init["name"] = "init"
    _security(init)["privileged"] = True
    _pod(template)["initContainers"] = [*(_pod(template).get("initContainers") or []), init]


def _windows(template: Obj) -> None:
    """A Windows pod: the Linux-only settings are not required of it (the API server refuses them there)."""
    pod = _pod(template)
    pod["os"] = {"name": "windows"}
    _security(pod).pop("seccompProfile", None)
    for item in _every_container(pod):
        for field in ("allowPrivilegeEscalation", "capabilities", "seccompProfile"):
            _security(item).pop(field, None)


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Mutation
    reason: str | None  # the evaluator's one forbidden reason; None for a change both must allow
    ours: str = ""  # what our message must say; {container} stands for the first container's name


BROKEN = [
    Case("privileged", _set(privileged=True), "privileged", 'container "{container}" is privileged'),
    Case("init-privileged", _privileged_init_container, "privileged", 'initContainer "init" is privileged'),
    Case("run-as-root", _set(runAsNonRoot=False), "runAsNonRoot != true", "sets runAsNonRoot: false"),
    Case(
        "pod-run-as-root",
        _both({"runAsNonRoot": False}, {"runAsNonRoot": True}),
        "runAsNonRoot != true",
        "spec.securityContext.runAsNonRoot is false",
    ),
    Case(
        "run-as-non-root-unset",
        _unset("runAsNonRoot", pod_too=True),
        "runAsNonRoot != true",
        "must run with runAsNonRoot: true",
    ),
    Case("uid-0", _set(runAsUser=0), "runAsUser=0", "sets runAsUser 0"),
    Case(
        "pod-uid-0",
        _both({"runAsUser": 0}, {"runAsUser": 65532}),
        "runAsUser=0",
        "spec.securityContext.runAsUser is 0",
    ),
    Case(
        "capabilities-kept",
        _set(capabilities={"drop": ["NET_RAW"]}),
        "unrestricted capabilities",
        "must drop all capabilities",
    ),
    Case("capabilities-unset", _unset("capabilities"), "unrestricted capabilities", "must drop all capabilities"),
    Case(
        "capability-added",
        _set(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        "unrestricted capabilities",
        "adds capability SYS_ADMIN",
    ),
    Case(
        "baseline-capability-added",
        _set(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}),
        "unrestricted capabilities",
        "adds capability CHOWN",
    ),
    Case(
        "privilege-escalation",
        _set(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation != false",
        "allowPrivilegeEscalation to false",
    ),
    Case(
        "privilege-escalation-unset",
        _unset("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation != false",
        "allowPrivilegeEscalation to false",
    ),
    Case("host-path", _volume({"name": "node", "hostPath": {"path": "/"}}), "restricted volume types", "uses hostPath"),
    Case(
        "nfs",
        _volume({"name": "share", "nfs": {"server": "nfs.invalid", "path": "/"}}),
        "restricted volume types",
        "uses nfs",
    ),
    Case(
        "seccomp-unconfined",
        _set(seccompProfile={"type": "Unconfined"}),
        "seccompProfile",
        "seccompProfile.type 'Unconfined'",
    ),
    Case(
        "pod-seccomp-unconfined",
        _both({"seccompProfile": {"type": "Unconfined"}}, {"seccompProfile": {"type": "RuntimeDefault"}}),
        "seccompProfile",
        "spec.securityContext.seccompProfile.type 'Unconfined'",
    ),
    Case("seccomp-unset", _unset("seccompProfile", pod_too=True), "seccompProfile", "has no seccompProfile"),
    Case("host-network", _spec(hostNetwork=True), "host namespaces", "spec.hostNetwork is true"),
    Case("host-pid", _spec(hostPID=True), "host namespaces", "spec.hostPID is true"),
    Case("host-ipc", _spec(hostIPC=True), "host namespaces", "spec.hostIPC is true"),
    Case(
        "host-port",
        _add_port({"name": "node", "containerPort": 9090, "hostPort": 9090, "protocol": "TCP"}),
        "hostPort",
        "uses hostPort 9090",
    ),
    Case("proc-mount", _set(procMount="Unmasked"), "procMount", "procMount Unmasked"),
    Case(
        "unsafe-sysctl",
        _set_pod(sysctls=[{"name": "kernel.msgmax", "value": "65536"}]),
        "forbidden sysctls",
        "sysctl kernel.msgmax",
    ),
    Case(
        "apparmor-unconfined",
        _set_pod(appArmorProfile={"type": "Unconfined"}),
        "forbidden AppArmor profile",
        "appArmorProfile.type 'Unconfined'",
    ),
    Case(
        "apparmor-annotation",
        _annotate("container.apparmor.security.beta.kubernetes.io/goapp", "unconfined"),
        "forbidden AppArmor profile",
        "annotation container.apparmor.security.beta.kubernetes.io/goapp: unconfined",
    ),
    Case("selinux-type", _set(seLinuxOptions={"type": "spc_t"}), "seLinuxOptions", "type 'spc_t'"),
    Case("selinux-user", _set_pod(seLinuxOptions={"user": "system_u"}), "seLinuxOptions", "user 'system_u'"),
    Case("host-process", _set(windowsOptions={"hostProcess": True}), "hostProcess", "windowsOptions.hostProcess"),
    Case(
        "probe-host",
        _with("startupProbe", {"tcpSocket": {"port": 8080, "host": "node.invalid"}, "periodSeconds": 2}),
        "probe or lifecycle host",
        "startupProbe.tcpSocket.host 'node.invalid'",
    ),
]

ALLOWED = [
    Case("net-bind-service", _set(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}), None),
    Case("run-as-non-root-from-pod", _from_pod_only("runAsNonRoot", True), None),
    Case("seccomp-from-pod", _from_pod_only("seccompProfile", {"type": "RuntimeDefault"}), None),
    Case("seccomp-localhost", _set(seccompProfile={"type": "Localhost", "localhostProfile": "goapp.json"}), None),
    Case(
        "safe-sysctls",
        _set_pod(
            sysctls=[
                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"},
                {"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},
                {"name": "net.ipv4.tcp_wmem", "value": "4096 16384 4194304"},
            ]
        ),
        None,
    ),
    Case("image-volume", _volume({"name": "assets", "image": {"reference": "127.0.0.1:5000/assets:1"}}), None),
    Case("selinux-container-engine", _set(seLinuxOptions={"type": "container_engine_t", "level": "s0:c1,c2"}), None),
    Case("selinux-empty-type", _set_pod(seLinuxOptions={"type": "", "level": "s0"}), None),
    Case("apparmor-runtime-default", _set_pod(appArmorProfile={"type": "RuntimeDefault"}), None),
    Case("apparmor-annotation-empty", _annotate("container.apparmor.security.beta.kubernetes.io/goapp", ""), None),
    Case(
        "apparmor-annotation-localhost",
        _annotate("container.apparmor.security.beta.kubernetes.io/goapp", "localhost/goapp"),
        None,
    ),
    Case("host-port-zero", _add_port({"name": "extra", "containerPort": 9090, "hostPort": 0}), None),
    Case("proc-mount-default", _set(procMount="Default"), None),
    Case("windows-pod", _windows, None),
]


def derive(deployment: Obj, case: Case) -> Obj:
    """A copy of deployment changed as case says, named after it so its verdict can be found."""
    changed = copy.deepcopy(deployment)
    changed["metadata"]["name"] = f"{deployment['metadata']['name']}-{case.name}"
    case.mutate(changed["spec"]["template"])
    return changed


def disagreements(deployment: Obj, cases: list[Case], verdicts: dict[Key, Obj]) -> list[str]:
    """Every case where the two evaluators differ, or refuse for another reason than the one broken."""
    problems = []
    for case in cases:
        changed = derive(deployment, case)
        theirs, ours = verdicts.get(key(changed)), our_messages(changed)
        if theirs is None:
            problems.append(f"{case.name}: Kubernetes' evaluator returned no verdict")
            continue
        if case.reason is None:
            if ours or not theirs["allowed"]:
                problems.append(f"{case.name}: both must allow it; ours says {ours}, Kubernetes {theirs['details']}")
        elif theirs["reasons"] != [case.reason]:
            problems.append(f"{case.name}: Kubernetes refuses it for {theirs['reasons']}, expected [{case.reason}]")
        elif not any(case.ours.format(container=_first(changed["spec"]["template"])["name"]) in m for m in ours):
            problems.append(f"{case.name}: Kubernetes refuses it ({theirs['details']}); ours says {ours}")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_broken_pod_specs_are_refused_by_both_for_the_same_reason(psa: Path, stack: str) -> None:
    deployments = [o for o in rendered(stack) if o["kind"] == "Deployment"]
    assert deployments, f"dist/{stack} renders no Deployment"
    for deployment in deployments:
        assert our_messages(deployment) == [], "the rendered Deployment must be a clean starting point"
        cases = BROKEN + ALLOWED
        stream = "".join(f"---\n{json.dumps(derive(deployment, case))}\n" for case in cases)
        verdicts = kubernetes_verdicts(psa, "-", stdin=stream)
        assert len(verdicts) == len(cases)
        assert disagreements(deployment, cases, verdicts) == []


def test_case_names_are_unique() -> None:
    names = [case.name for case in BROKEN + ALLOWED]
    assert len(names) == len(set(names))


# --- the tool and the gate -----------------------------------------------------------------------------------


GOOD_PROD = ROOT / "gates" / "fixtures" / "good" / "prod"


@pytest.fixture
def broken_stack(tmp_path: Path) -> Path:
    """A stack directory holding the good prod fixture's Deployment made privileged, and its Service."""
    objects = [dict(o) for _, o in load([GOOD_PROD])]
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    _security(_first(deployment["spec"]["template"]))["privileged"] = True
    service = next(o for o in objects if o["kind"] == "Service")
    manifests = tmp_path / "prod" / "1-manifest"
    manifests.mkdir(parents=True)
    (manifests / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    (manifests / "service.yml").write_text(yaml.safe_dump(service))
    return tmp_path / "prod"


def test_the_gate_fails_on_a_forbidden_pod_template_and_names_why(broken_stack: Path) -> None:
    deployment = yaml.safe_load((broken_stack / "1-manifest" / "deployment.yaml").read_text())
    name = f"{deployment['metadata']['namespace']}/{deployment['metadata']['name']}"
    container = _first(deployment["spec"]["template"])["name"]
    result = gate("psa", str(broken_stack))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f'Deployment {name}: forbidden by restricted:latest: privileged (container "{container}" must not set '
        "securityContext.privileged=true)"
    ) in result.stdout
    assert (
        "psa: 2 objects, 1 with a pod template, 1 forbidden (restricted:latest, k8s.io/pod-security-admission v0."
        in (result.stderr)
    )
    assert "FAILED: psa" in result.stderr


def test_the_gate_passes_the_good_fixture() -> None:
    result = gate("psa", str(GOOD_PROD))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines, "the good fixture holds pod templates"
    assert all(line.endswith(": allowed") for line in lines), result.stdout
    assert "passed: psa" in result.stderr


def test_a_misspelt_field_is_an_error_not_an_unset_setting(psa: Path) -> None:
    """The evaluator judges typed structs: a field it cannot place would silently count as unset."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "typo"},
        "spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"privilegd": True}}]},
    }
    result = run_psa(psa, "-", stdin=json.dumps(pod))
    assert result.returncode == 2
    assert 'unknown field "spec.containers[0].securityContext.privilegd"' in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-format", "xml", "-"], "", '-format "xml" is not allowed; use text or json'),
        (["no-such-dir"], None, "psa: no-such-dir: no such file or directory"),
        (["-"], "kind: Deployment\n", "every document must be a Kubernetes object with apiVersion and kind"),
        (
            ["-"],
            "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: old}\n",
            "Deployment apps/v1beta1 carries a pod template, but this tool decodes only",
        ),
    ],
)
def test_bad_input_is_refused_by_name(psa: Path, args: list[str], stdin: str | None, message: str) -> None:
    result = run_psa(psa, *args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
