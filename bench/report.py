"""Write bench/results.md and the latency chart from the records of python -m bench.run (bench/data/).

Every published figure is a ratio of two things measured in the same round of the same run, taken per round
(paired) and then summarised as median, min and max over the rounds; absolute values are shown for context
only. Run by python -m bench.run with the benchmark venv (matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PARTS = ("service", "image", "engine", "cluster", "go")
PART_TITLES = {
    "service": "Service (wrk on loopback)",
    "image": "Image",
    "engine": "Engine (Pulumi, render mode)",
    "cluster": "Local cluster",
    "go": "Go benchmarks",
}


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int


def summarise(values: list[float]) -> Summary:
    return Summary(statistics.median(values), min(values), max(values), len(values))


class Records:
    """One part's measurements: values[metric][subject][run]."""

    def __init__(self, path: Path) -> None:
        self.values: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
        self.units: dict[str, str] = {}
        if not path.exists():
            return
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                self.values[row["metric"]][row["subject"]][int(row["run"])] = float(row["value"])
                self.units[row["metric"]] = row["unit"]

    def runs(self, metric: str, subject: str) -> dict[int, float]:
        """Measured rounds (run 0 holds one-off values such as settings)."""
        return {run: v for run, v in self.values.get(metric, {}).get(subject, {}).items() if run > 0}

    def one(self, metric: str, subject: str) -> float | None:
        found = self.values.get(metric, {}).get(subject, {})
        return next(iter(found.values()), None) if found else None

    def summary(self, metric: str, subject: str, scale: float = 1.0) -> Summary | None:
        values = [v * scale for v in self.runs(metric, subject).values()]
        return summarise(values) if values else None

    def paired_ratio_of(self, top: str, bottom: str, subject: str) -> Summary | None:
        """Ratio of two metrics of one subject within each round."""
        a, b = self.runs(top, subject), self.runs(bottom, subject)
        ratios = [a[run] / b[run] for run in sorted(a.keys() & b.keys()) if b[run]]
        return summarise(ratios) if ratios else None

    def paired_ratio(self, metric: str, top: str, bottom: str) -> Summary | None:
        """Ratio top/bottom within each round, summarised over the rounds both were measured in."""
        a, b = self.runs(metric, top), self.runs(metric, bottom)
        ratios = [a[run] / b[run] for run in sorted(a.keys() & b.keys()) if b[run]]
        return summarise(ratios) if ratios else None


def fmt(value: float, digits: int = 2) -> str:
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.2g}"
    return f"{value:,.{digits}f}"


def row(label: str, s: Summary | None, unit: str, digits: int = 2, goal: str = "", verdict: str = "") -> str:
    if s is None:
        return f"| {label} | not measured | | | | {goal} | |"
    median = f"{fmt(s.median, digits)} {unit}".rstrip()
    return f"| {label} | {median} | {fmt(s.low, digits)} | {fmt(s.high, digits)} | {s.n} | {goal} | {verdict} |"


def verdict(s: Summary | None, at_least: float | None = None, at_most: float | None = None, min_runs: int = 5) -> str:
    if s is None:
        return ""
    if s.n < min_runs:
        return f"not judged: {s.n} run(s), fewer than {min_runs}"
    ok = (at_least is None or s.median >= at_least) and (at_most is None or s.median <= at_most)
    return "**met**" if ok else "**missed**"


def goal_row(
    label: str,
    s: Summary | None,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    min_runs: int = 5,
) -> str:
    """A ratio's row with its goal: the goal column and the verdict come from the same bound."""
    goal = f"≥ {at_least:.2f}" if at_least is not None else f"≤ {at_most:.2f}"
    return row(label, s, "", 3, goal, verdict(s, at_least=at_least, at_most=at_most, min_runs=min_runs))


# The goals of the published figures (each a ratio; see the issue that set them).
TUTORIAL_GOAL = 1.20  # goapp /hello requests/s ÷ the tutorial's gin.Default() server, at least
DEADLINE_GOAL = 0.90  # goapp /hello requests/s ÷ bare net/http with goapp's deadlines, at least
SERVICE_MIN_RUNS = 7  # interleaved rounds a service goal is judged on
# The two deployment goals were set from their first measurement (2026-12-05: 18.3 and 0.909, medians of 5):
# no-change `pulumi up` also builds (from cache) and pushes the image and diffs every resource, which a no-change
# `kubectl apply` of rendered YAML does not, so the first goal holds that line against regressions; the second
# asks that a change reach ready pods no slower through Pulumi than through kubectl's render, apply and rollout.
NOOP_DEPLOY_GOAL = 20.0  # no-change pulumi up ÷ no-change kubectl apply --server-side, at most
CHANGE_DEPLOY_GOAL = 1.00  # env change to ready, pulumi ÷ kubectl's render + apply + rollout, at most
IMAGE_SIZE_GOAL = 1.10  # final image ÷ stripped binary, at most
WARM_REBUILD_GOAL = 0.30  # warm rebuild ÷ cold build, at most
PREVIEW_GOAL = 1.25  # preview of PREVIEWED_STACK ÷ one-resource floor, at most
PREVIEWED_STACK = "prod"  # the stack whose render-mode preview is measured: the one with the most resources

TABLE_HEAD = (
    "| Figure | Median | Min | Max | Runs | Goal | Median vs goal |\n| --- | --- | --- | --- | --- | --- | --- |"
)


def read_status(data: Path, part: str) -> str:
    path = data / f"{part}.status"
    return path.read_text().strip() if path.exists() else "not measured: not run yet (python -m bench.run " + part + ")"


def load_line(rec: Records) -> str:
    start, end = rec.one("load1_start", "machine"), rec.one("load1_end", "machine")
    if start is None:
        return ""
    tail = f", {end:.1f} at its end" if end is not None else ""
    return f"Load average (1 min) on this {{nproc}}-core machine: {start:.1f} at the part's start{tail}.\n\n"


def service_reading(goapp: Summary | None, gin: Summary | None, timeouts: Summary | None, quiet: Summary | None) -> str:
    """Where goapp's distance from the floor goes: Gin itself, the server's deadlines, goapp's middleware, the
    access log line."""
    if goapp is None or gin is None or timeouts is None or quiet is None:
        return ""
    middleware = (1 - quiet.median) - (1 - gin.median) - (1 - timeouts.median)
    return (
        f"Reading: goapp as shipped answers {goapp.median:.3f} of the bare floor's requests/s. Of that distance, Gin "
        f"alone accounts for {1 - gin.median:.3f}, the server's read, write and idle deadlines (net/http with "
        f"goapp's timeouts) for {1 - timeouts.median:.3f}, goapp's middleware (request id, metrics, panic "
        f"recovery: what is left of the distance with no access log) for {middleware:.3f}, and the JSON "
        f"access-log line for {quiet.median - goapp.median:.3f} (medians of paired ratios; they need not add up "
        "exactly)."
    )


INSTRUCTION_SUBJECTS = (
    ("goapp-hello", "goapp, as shipped"),
    ("goapp-quiet-hello", "goapp, LOG_LEVEL=warn"),
    ("tutorial-hello", "the tutorial's server (gin.Default())"),
    ("timeouts-hello", "net/http with goapp's deadlines"),
    ("gin-hello", "bare Gin"),
    ("baseline-hello", "bare net/http"),
)


def instructions_rows(rec: Records) -> list[str]:
    """Instructions per request under callgrind: repeatable where requests/s swing, the figure to choose by."""
    rows = []
    for subject, label in INSTRUCTION_SUBJECTS:
        rows.append(row(f"Instructions per /hello, {label}", rec.summary("instructions", subject), "", 0))
    for subject, label in (("tutorial-hello", "the tutorial's server"), ("timeouts-hello", "net/http with deadlines")):
        ratio = rec.paired_ratio("instructions", "goapp-hello", subject)
        rows.append(row(f"Instructions per /hello, goapp ÷ {label} (lower is cheaper)", ratio, "", 3))
    return rows


def service_section(rec: Records, chart_name: str) -> list[str]:
    ms = 1 / 1000
    rps = rec.paired_ratio("rps", "goapp-hello", "baseline-hello")
    tutorial = rec.paired_ratio("rps", "goapp-hello", "tutorial-hello")
    deadlines = rec.paired_ratio("rps", "goapp-hello", "timeouts-hello")
    out = [
        TABLE_HEAD,
        goal_row(
            "**/hello requests/s, goapp ÷ the tutorial's server**",
            tutorial,
            at_least=TUTORIAL_GOAL,
            min_runs=SERVICE_MIN_RUNS,
        ),
        goal_row(
            "**/hello requests/s, goapp ÷ net/http with goapp's deadlines**",
            deadlines,
            at_least=DEADLINE_GOAL,
            min_runs=SERVICE_MIN_RUNS,
        ),
        row("/hello requests/s, goapp ÷ baseline (bare net/http)", rps, "", 3),
    ]
    gin = rec.paired_ratio("rps", "gin-hello", "baseline-hello")
    out.append(row("/hello requests/s, bare Gin (router only, no middleware) ÷ baseline", gin, "", 3))
    timeouts = rec.paired_ratio("rps", "timeouts-hello", "baseline-hello")
    out.append(row("/hello requests/s, bare net/http with goapp's server timeouts ÷ baseline", timeouts, "", 3))
    quiet = rec.paired_ratio("rps", "goapp-quiet-hello", "baseline-hello")
    out.append(row("/hello requests/s, goapp with LOG_LEVEL=warn (no access log) ÷ baseline", quiet, "", 3))
    out.append(
        row(
            "/hello requests/s, the tutorial's server ÷ baseline",
            rec.paired_ratio("rps", "tutorial-hello", "baseline-hello"),
            "",
            3,
        )
    )
    out += instructions_rows(rec)
    for pct in ("50", "99"):
        ratio = rec.paired_ratio(f"latency_p{pct}", "goapp-hello", "baseline-hello")
        out.append(row(f"/hello p{pct} latency, goapp ÷ baseline", ratio, "", 2))
    for subject, label in (("goapp-notes-get", "GET /notes/:name"), ("goapp-notes-put", "PUT /notes/:name")):
        ratio = rec.paired_ratio("rps", subject, "goapp-hello")
        out.append(row(f"{label} requests/s ÷ goapp /hello", ratio, "", 3))
    out += [
        "",
        "Absolute values, for context only (they move with the machine's load):",
        "",
        "| Subject | Figure | Median | Min | Max | Runs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    subjects = (
        ("tutorial-hello", "the tutorial's server GET /hello"),
        ("baseline-hello", "baseline GET /hello"),
        ("timeouts-hello", "net/http with goapp's timeouts GET /hello"),
        ("gin-hello", "bare Gin GET /hello"),
        ("goapp-hello", "goapp GET /hello"),
        ("goapp-quiet-hello", "goapp GET /hello, LOG_LEVEL=warn"),
        ("goapp-notes-get", "goapp GET /notes/:name"),
        ("goapp-notes-put", "goapp PUT /notes/:name"),
    )
    figures = (
        ("rps", "requests/s", 1.0, 0),
        ("latency_p50", "p50 latency (ms)", ms, 3),
        ("latency_p99", "p99 latency (ms)", ms, 3),
        ("rss_end", "RSS at end (MiB)", 1.0, 1),
        ("rss_peak", "peak RSS (MiB)", 1.0, 1),
    )
    for subject, label in subjects:
        for metric, name, scale, digits in figures:
            s = rec.summary(metric, subject, scale)
            if s is not None:
                out.append(
                    f"| {label} | {name} | {fmt(s.median, digits)} | {fmt(s.low, digits)} "
                    f"| {fmt(s.high, digits)} | {s.n} |"
                )
    reading = service_reading(rps, gin, timeouts, quiet)
    if reading:
        out += ["", reading]
    conns = rec.one("connections", "all")
    seconds = rec.one("duration", "all")
    out += [
        "",
        f"Method: wrk {int(conns or 0)} connections, one thread pinned to core 0 (`taskset`), the server pinned to "
        f"core 1 with `GOMAXPROCS=1`, {int(seconds or 0)} s per run after a 2 s warm-up, a fresh server per run; "
        "rounds alternate the order of the subjects (A B C…, then …C B A) so drift hits all alike. goapp "
        "runs with its shipped defaults (info-level JSON access log, written to /dev/null; Prometheus metrics), "
        "and once more with `LOG_LEVEL=warn` to show what the access log costs; "
        "the baseline is `bench/baseline/`, a bare `net/http` handler answering the same JSON body and "
        "Content-Type (checked before measuring); the same program with `-router gin` is the bare-Gin subject "
        "(Gin's router and `c.JSON`, no middleware), which tells Gin's share from goapp's own, and with "
        "goapp's read-header, read, write and idle timeouts (`-read-header-timeout` …, the values `bench/run.py` "
        "gives goapp too) it is the deadline subject, which tells what net/http's per-request deadlines cost. "
        "The tutorial's server is its `GET /hello` program verbatim (`bench/tutorial/`: `gin.Default()`, Gin's "
        "text logger and recovery, `c.JSON(200, gin.H{…})`), built in the same run on goapp's Gin release, its "
        "log lines going to the same sink as goapp's. Instructions per request: `bench/callgrind.py` runs each "
        "server under valgrind's callgrind (`GOMAXPROCS=1`, `GODEBUG=asyncpreemptoff=1`, which valgrind needs and "
        "which does not change what a request runs natively) and counts the instructions of the whole process "
        f"between {int(rec.one('callgrind_from', 'all') or 0)} and {int(rec.one('callgrind_to', 'all') or 0)} "
        "requests of one keep-alive client (the difference, so start-up cancels out), dumped "
        "through vgdb so no signal reaches the server; median of interleaved rounds. "
        "PUT writes 256-byte bodies to 64 names in turn (each write is "
        "fsynced by the store); GET reads one 256-byte note. Any failed or non-2xx request fails the run. Raw "
        "wrk output: `bench/data/wrk/`.",
        "",
        f"![Latency distribution of goapp and the baseline]({chart_name})",
    ]
    return out


def image_section(rec: Records) -> list[str]:
    image_bytes, binary_bytes = rec.one("image_size", "goapp"), rec.one("binary_size", "goapp")
    size = summarise([image_bytes / binary_bytes]) if image_bytes and binary_bytes else None
    warm = rec.paired_ratio_of("warm_rebuild", "cold_build", "goapp")
    warm_cpu = rec.paired_ratio_of("warm_rebuild_cpu", "cold_build_cpu", "goapp")
    out = [
        TABLE_HEAD,
        goal_row("**Final image size ÷ stripped binary**", size, at_most=IMAGE_SIZE_GOAL, min_runs=1),
        goal_row("**Warm rebuild ÷ cold build** (wall time)", warm, at_most=WARM_REBUILD_GOAL),
        row("Warm rebuild ÷ cold build (CPU time of the build containers)", warm_cpu, "", 3),
        row("Cold build, wall time", rec.summary("cold_build", "goapp"), "s", 1),
        row("Warm rebuild after a one-line change, wall time", rec.summary("warm_rebuild", "goapp"), "s", 1),
        row("Cold build, CPU time", rec.summary("cold_build_cpu", "goapp"), "s", 1),
        row("Warm rebuild, CPU time", rec.summary("warm_rebuild_cpu", "goapp"), "s", 1),
    ]
    if warm is not None and warm_cpu is not None and min(warm.median, warm_cpu.median) > WARM_REBUILD_GOAL:
        out += [
            "",
            f"Reading: the warm rebuild costs {warm_cpu.median:.0%} of a cold build in CPU time too, not only in "
            "wall time: consistent with the classic builder keeping no Go build cache between builds, so after "
            "`COPY . .` every dependency is compiled again and only the module download is saved.",
        ]
    if image_bytes and binary_bytes:
        out += [
            "",
            f"Sizes: image {image_bytes / 2**20:.2f} MiB (`docker image inspect` Size), binary "
            f"{binary_bytes / 2**20:.2f} MiB (`/goapp` copied out of the image, linked with `-s -w`).",
        ]
    out += [
        "",
        "Method: `docker build` (the daemon's classic builder, as pulumi-docker uses it) of a temporary copy of "
        "goapp/ on the local base-image stand-ins; the cold build uses `--no-cache` (modules downloaded and "
        "everything compiled again), the warm rebuild follows it after changing one line of Go (the "
        "`DefaultMessage` constant) in the copy; goapp/Dockerfile precompiles the imported packages in a layer "
        "keyed by the import list, so that rebuild compiles only goapp's own packages. Cold and warm alternate. "
        "Wall time is what a developer waits but "
        "moves with the other builds sharing this machine; CPU time is the growth of the `docker` cpuacct cgroup "
        "(every build-step container) during the build; it also counts any other Docker container that ran "
        "meanwhile on this shared machine, hence the outliers.",
    ]
    return out


def engine_section(rec: Records, data: Path) -> list[str]:
    ratio = rec.paired_ratio("preview", PREVIEWED_STACK, "floor")
    stack_n, floor_n = rec.one("resources", PREVIEWED_STACK), rec.one("resources", "floor")
    tests = rec.one("unit_tests", "pytest")
    out = [
        TABLE_HEAD,
        goal_row(f"**Preview of {PREVIEWED_STACK} ÷ one-resource floor** (wall time)", ratio, at_most=PREVIEW_GOAL),
        row(
            f"Preview of {PREVIEWED_STACK} ({int(stack_n or 0)} resources in the plan, stack and provider included)",
            rec.summary("preview", PREVIEWED_STACK),
            "s",
            2,
        ),
        row(
            f"Preview of the floor ({int(floor_n or 0)} resources in the plan)", rec.summary("preview", "floor"), "s", 2
        ),
        row(f"Unit suite ({int(tests or 0)} tests), wall time", rec.summary("unit_suite", "pytest"), "s", 2),
        *services_rows(rec),
    ]
    stack, floor = rec.summary("preview", PREVIEWED_STACK), rec.summary("preview", "floor")
    if stack is not None and floor is not None:
        out += [
            "",
            f"Reading: {PREVIEWED_STACK}'s preview takes {stack.median - floor.median:.2f} s (medians) more than the "
            "floor's, "
            "the cost of goapp's program itself (its imports, settings validation and resources). goapp's program "
            "imports pulumi_docker only when it builds, and freezes Python's collector when it ends "
            "(infra/__main__.py), which spares it most of the interpreter's shutdown; the floor, written plainly, "
            "does neither.",
        ]
    out += [
        "",
        f"Method: `pulumi preview --non-interactive --diff` of the {PREVIEWED_STACK} stack in render mode "
        f"(`GOAPP_RENDER_DIR`, `GOAPP_IMAGE_DIGEST` set, as `python -m ops.stack render-preview {PREVIEWED_STACK}` "
        "runs it) against `bench/floor/` (one "
        "ConfigMap through a render-mode provider), same CLI, language host, plugins, `PULUMI_HOME` and "
        f"virtualenv; {PREVIEWED_STACK} runs the repository's program with a temporary copy of "
        f"stacks/Pulumi.{PREVIEWED_STACK}.yaml as "
        "`--config-file`, the floor from a temporary copy, each with its own local file backend and an empty "
        "passphrase; one unrecorded preview each first, then alternating rounds. "
        "Services: `bench/services/` composes 1, 5 or 20 prod-shaped services from goapp's components (namespace, "
        "configuration, volume, deployment, Service, network policy, autoscaler, disruption budget) in render "
        "mode, the order of the three rotating each round. "
        f"Unit suite: `{recorded_command(data, 'unit-command.txt')}` (the selection `make unit` runs).",
    ]
    return out


SERVICE_COUNTS = (1, 5, 20)


def per_added_service(rec: Records, count: int) -> Summary | None:
    """Each round's (preview of `count` services ÷ preview of one, minus one) ÷ (count − 1): what one more
    service adds to a preview, as a share of the one-service program's preview."""
    many, one = rec.runs("preview", f"services-{count}"), rec.runs("preview", "services-1")
    shares = [(many[run] / one[run] - 1) / (count - 1) for run in sorted(many.keys() & one.keys()) if one[run]]
    return summarise(shares) if shares else None


def services_rows(rec: Records) -> list[str]:
    rows = []
    for count in SERVICE_COUNTS:
        resources = rec.one("resources", f"services-{count}")
        label = f"Preview of {count} service{'s' if count > 1 else ''} ({int(resources or 0)} resources in the plan)"
        rows.append(row(label, rec.summary("preview", f"services-{count}"), "s", 2))
    for count in SERVICE_COUNTS[1:]:
        rows.append(
            row(
                f"Preview of {count} services ÷ 1 service",
                rec.paired_ratio("preview", f"services-{count}", "services-1"),
                "",
                3,
            )
        )
    rows.append(row("Cost of each added service ÷ preview of 1 service (from 20)", per_added_service(rec, 20), "", 3))
    return rows


def cluster_section(rec: Records) -> list[str]:
    return [
        TABLE_HEAD,
        goal_row(
            "**No-change deployment: `pulumi up` ÷ `kubectl apply --server-side`**",
            rec.paired_ratio("noop_deploy", "pulumi", "kubectl"),
            at_most=NOOP_DEPLOY_GOAL,
        ),
        goal_row(
            "**Env change until the new pods are ready: `pulumi up` ÷ re-render + `kubectl apply` + rollout**",
            rec.paired_ratio("change_to_ready", "pulumi", "kubectl"),
            at_most=CHANGE_DEPLOY_GOAL,
        ),
        row("No-change `pulumi up`", rec.summary("noop_deploy", "pulumi"), "s", 2),
        row("No-change `kubectl apply --server-side`", rec.summary("noop_deploy", "kubectl"), "s", 2),
        row("Env change to ready, `pulumi up`", rec.summary("change_to_ready", "pulumi"), "s", 1),
        row("Env change to ready, kubectl (render, apply, rollout)", rec.summary("change_to_ready", "kubectl"), "s", 1),
        row("… of which the re-render", rec.summary("change_render", "kubectl"), "s", 1),
        row("Warm `make up` to ready", rec.summary("warm_make_up", "local"), "s", 1),
        row("Config change: `pulumi up` returned", rec.summary("config_pulumi_up", "local"), "s", 1),
        row("Config change: new value answered by /hello", rec.summary("config_rollout", "local"), "s", 1),
        row(
            "Config change: `pulumi up` began until the last old pod is gone",
            rec.summary("config_last_old_pod_gone", "local"),
            "s",
            1,
        ),
        row("HPA: load began until it asks for a second pod", rec.summary("hpa_first_pod", "local"), "s", 1),
        "",
        "The last old pod leaves after its preStop sleep, `SHUTDOWN_DRAIN` and graceful stop; until then it still "
        "serves the requests it accepted. HPA: an autoscaled copy of the local stack (1–3 replicas, 50 % of a 20m "
        "CPU request, a 10 s scale-down window so each round starts from one pod), loaded with `/hello` by six "
        "keep-alive clients through the gateway until its Deployment asks for a second replica (metrics-server "
        "scrapes every 15 s, the HPA reads every 15 s).",
        "",
        "Against kubectl: a copy of the local stack (its own namespace and NodePort) rendered with the digest "
        "`pulumi up` deployed and applied with `kubectl apply --server-side` alone; each round times a no-change "
        "`pulumi up` of the local stack against a no-change apply of the copy's manifests, and a one-line "
        "`APP_MESSAGE` change each way until the new pods are ready (`pulumi up` waits for the rollout itself; "
        "kubectl's path re-renders, applies and waits with `kubectl rollout status`), alternating which goes first.",
        "",
        "Method: one unrecorded `make up`, then timed ones until `ops.up` sees `/readyz` answer on the "
        "NodePort (nothing changed, so this is the cost of a no-op deployment: refresh, cached image build and "
        "push, diff). Config change: `goapp:env.APP_MESSAGE` set to a new message in a temporary copy of "
        "stacks/Pulumi.local.yaml (stacks/ is not edited), then timed from `pulumi up` of the local stack with "
        "`--config-file <copy>` (through ops.engine) until `/hello` answers the new message (polled every 0.1 s); "
        "the stack's own config is applied again at the end.",
    ]


def recorded_command(data: Path, name: str) -> str:
    """The command line a part wrote beside its records."""
    path = data / name
    return path.read_text().strip() if path.exists() else "(command not recorded)"


def go_section(rec: Records, data: Path) -> list[str]:
    lines = int(rec.one("benchmark_lines", "goapp") or 0)
    out = [
        f"`{recorded_command(data, 'go-command.txt')}`: {lines} result lines in "
        "[go-bench.txt](go-bench.txt), benchstat's format (compare two runs with `benchstat old.txt new.txt`). "
        "benchstat's summary:",
        "",
    ]
    summary = data / "go-benchstat.txt"
    out += ["```", summary.read_text().rstrip() if summary.exists() else "(missing)", "```"]
    return out


def machine_table(data: Path) -> tuple[list[str], str]:
    path = data / "machine.tsv"
    rows: dict[str, str] = {}
    if path.exists():
        with path.open(newline="") as handle:
            rows = {r["key"]: r["value"] for r in csv.DictReader(handle, delimiter="\t")}
    out = ["| | |", "| --- | --- |"]
    out += [f"| {key} | {value} |" for key, value in rows.items()]
    return out, rows.get("nproc", "?")


NINES = (10, 50, 75, 90, 99, 99.9, 99.99)


def nines(p: float) -> float:
    return -math.log10(1 - p / 100)


def chart(service: Records, path: Path) -> bool:
    """Latency by percentile, one line per run (thin) and the per-percentile median of the runs (bold)."""
    percentiles = sorted(float(m.removeprefix("latency_p")) for m in service.values if m.startswith("latency_p"))
    percentiles = [p for p in percentiles if p < 100]
    if not percentiles:
        return False
    # Only the benchmark's own venv has matplotlib; a report without latency data draws nothing and needs none.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        (
            "GET /hello: goapp vs the tutorial's server and the floors",
            (
                ("goapp-hello", "goapp (Gin)", "tab:blue"),
                ("tutorial-hello", "the tutorial's gin.Default()", "tab:brown"),
                ("goapp-quiet-hello", "goapp, LOG_LEVEL=warn", "tab:purple"),
                ("gin-hello", "bare Gin", "tab:orange"),
                ("timeouts-hello", "net/http with goapp's timeouts", "tab:olive"),
                ("baseline-hello", "baseline (net/http)", "tab:gray"),
            ),
        ),
        (
            "goapp notes",
            (
                ("goapp-notes-get", "GET /notes/:name", "tab:green"),
                ("goapp-notes-put", "PUT /notes/:name (fsync)", "tab:red"),
            ),
        ),
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    xs = [nines(p) for p in percentiles]
    for ax, (title, subjects) in zip(axes, panels, strict=True):
        for subject, label, colour in subjects:
            per_run: dict[int, list[float]] = defaultdict(list)
            for p in percentiles:
                for run, value in service.runs(f"latency_p{p:g}", subject).items():
                    per_run[run].append(value / 1000)
            if not per_run:
                continue
            for values in per_run.values():
                if len(values) == len(xs):
                    ax.plot(xs, values, color=colour, alpha=0.25, linewidth=0.8)
            medians = [statistics.median(service.runs(f"latency_p{p:g}", subject).values()) / 1000 for p in percentiles]
            ax.plot(xs, medians, color=colour, linewidth=2.2, label=f"{label}, median of {len(per_run)} runs")
        ax.set_xticks([nines(p) for p in NINES], [f"p{p:g}" for p in NINES])
        ax.set_yscale("log")
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("wrk latency distribution, 64 connections, client and server each pinned to one core", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chart", type=Path, required=True)
    args = parser.parse_args(argv)

    machine, nproc = machine_table(args.data)
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`; one part alone: `python -m bench.run "
        "service|image|engine|cluster|go`). This machine is shared with other builds, so every published figure "
        "is a **ratio of two things measured in the same round of the same run**, taken per round and summarised "
        "as median, min and max; absolute numbers are context, not claims.",
        "",
        "## Machine and versions",
        "",
        *machine,
        "",
        "## Summary",
        "",
        "| Part | Status |",
        "| --- | --- |",
    ]
    for part in PARTS:
        out.append(f"| {PART_TITLES[part]} | {read_status(args.data, part)} |")
    for part in PARTS:
        rec = Records(args.data / f"{part}.tsv")
        status = read_status(args.data, part)
        out += ["", f"## {PART_TITLES[part]}", ""]
        if not status.startswith("measured"):
            out.append(f"**{status}**")
            continue
        out.append(load_line(rec).replace("{nproc}", nproc).rstrip())
        out.append("")
        if part == "service":
            drew = chart(rec, args.chart)
            out += service_section(rec, args.chart.name if drew else "(no chart: no latency data)")
        elif part == "image":
            out += image_section(rec)
        elif part == "engine":
            out += engine_section(rec, args.data)
        elif part == "cluster":
            out += cluster_section(rec)
        else:
            out += go_section(rec, args.data)
    args.out.write_text("\n".join(out).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
