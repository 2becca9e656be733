"""Hold the checkers' reports to the bar: no blocking finding unless accepted, one by one, in one reviewed file.

    python3 gates/findings.py kube-score REPORT.json --stack prod [--accepted gates/accepted-findings.yaml]
    python3 gates/findings.py polaris REPORT.json --stack prod
    python3 gates/findings.py hadolint REPORT.json
    python3 gates/findings.py actionlint REPORT.json

Blocking: a kube-score CRITICAL, a Polaris danger, any hadolint or actionlint finding. A finding blocks unless one
entry of the accepted-findings file names its tool and check, and for manifests its kind and object name
(namespace, container and stacks where given), for files its path relative to the repository.
Entries that accept nothing in this run are an error too: an acceptance outlives its reason only if nobody
notices, so stale entries must be removed.
Exit status: 0 clean, 1 blocking or stale findings, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANIFEST_TOOLS = ("kube-score", "polaris")
FILE_TOOLS = ("hadolint", "actionlint")
TOOLS = MANIFEST_TOOLS + FILE_TOOLS
COMMON_KEYS = frozenset({"tool", "check", "reason", "reviewed_by", "reviewed_on"})
REQUIRED_KEYS = {
    **{tool: COMMON_KEYS | {"kind", "name"} for tool in MANIFEST_TOOLS},
    **{tool: COMMON_KEYS | {"file"} for tool in FILE_TOOLS},
}
OPTIONAL_KEYS = {
    **{tool: frozenset({"namespace", "container", "stacks"}) for tool in MANIFEST_TOOLS},
    **{tool: frozenset() for tool in FILE_TOOLS},
}
REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_REASON = 40
KUBE_SCORE_CRITICAL = 1


class AcceptedFindingsError(ValueError):
    """The accepted-findings file breaks its schema."""


@dataclass(frozen=True)
class Finding:
    tool: str
    check: str
    kind: str
    namespace: str
    name: str
    container: str | None
    message: str

    def __str__(self) -> str:
        if self.tool in FILE_TOOLS:
            return f"{self.tool} {self.check}: {self.name}: {self.message}"
        where = f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"
        if self.container:
            where += f' container "{self.container}"'
        return f"{self.tool} {self.check}: {where}: {self.message}"


@dataclass(frozen=True)
class Acceptance:
    index: int
    tool: str
    check: str
    kind: str
    name: str
    namespace: str | None
    container: str | None
    stacks: tuple[str, ...] | None
    reason: str

    def key(self) -> tuple[object, ...]:
        return (self.tool, self.check, self.kind, self.name, self.namespace, self.container, self.stacks)

    def applies_to(self, stack: str) -> bool:
        return self.stacks is None or stack in self.stacks

    def matches(self, finding: Finding) -> bool:
        return (self.tool, self.check, self.kind, self.name, self.container) == (
            finding.tool,
            finding.check,
            finding.kind,
            finding.name,
            finding.container,
        ) and (self.namespace is None or self.namespace == finding.namespace)

    def __str__(self) -> str:
        return f"entry {self.index} ({self.tool} {self.check} on {self.kind + ' ' if self.kind else ''}{self.name})"


def load_accepted(path: Path) -> list[Acceptance]:
    """Parse and validate the accepted-findings file; every error names the entry and the rule it breaks."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or set(document) != {"accepted"} or not isinstance(document["accepted"], list):
        raise AcceptedFindingsError(f"{path}: must be a mapping with one key, accepted: a list of entries")
    entries: list[Acceptance] = []
    for index, entry in enumerate(document["accepted"], start=1):
        where = f"{path}: entry {index}"
        if not isinstance(entry, dict):
            raise AcceptedFindingsError(f"{where}: must be a mapping")
        if entry.get("tool") not in TOOLS:
            raise AcceptedFindingsError(f"{where}: tool {entry.get('tool')!r} is not one of {', '.join(TOOLS)}")
        tool, keys = entry["tool"], set(entry)
        if missing := REQUIRED_KEYS[tool] - keys:
            raise AcceptedFindingsError(f"{where}: missing {', '.join(sorted(missing))}")
        if unknown := keys - REQUIRED_KEYS[tool] - OPTIONAL_KEYS[tool]:
            raise AcceptedFindingsError(
                f"{where}: unknown keys {', '.join(sorted(unknown))}; a {tool} entry has "
                f"{', '.join(sorted(REQUIRED_KEYS[tool] | OPTIONAL_KEYS[tool]))}"
            )
        for key in ("check", "kind", "name", "namespace", "container", "file"):
            value = entry.get(key)
            if key in entry and (not isinstance(value, str) or not value.strip() or any(c in value for c in "*?[")):
                raise AcceptedFindingsError(
                    f"{where}: {key} must be one exact, non-empty name (no wildcards: accept findings one by one)"
                )
        if not isinstance(entry["reason"], str) or len(entry["reason"].strip()) < MIN_REASON:
            raise AcceptedFindingsError(
                f"{where}: reason must explain the acceptance in at least {MIN_REASON} characters"
            )
        if not isinstance(entry["reviewed_by"], str) or not entry["reviewed_by"].strip():
            raise AcceptedFindingsError(f"{where}: reviewed_by must name who reviewed it")
        if not isinstance(entry["reviewed_on"], datetime.date):
            raise AcceptedFindingsError(f"{where}: reviewed_on must be a date (YYYY-MM-DD)")
        stacks = entry.get("stacks")
        if "stacks" in entry and (
            not isinstance(stacks, list) or not stacks or not all(isinstance(s, str) and s for s in stacks)
        ):
            raise AcceptedFindingsError(f"{where}: stacks must be a non-empty list of stack names")
        acceptance = Acceptance(
            index,
            tool,
            entry["check"],
            entry.get("kind", ""),
            entry.get("name") or entry["file"],
            entry.get("namespace"),
            entry.get("container"),
            tuple(stacks) if stacks else None,
            entry["reason"].strip(),
        )
        if any(a.key() == acceptance.key() for a in entries):
            raise AcceptedFindingsError(f"{where}: duplicates an earlier entry")
        entries.append(acceptance)
    return entries


def kube_score_findings(report: Any) -> list[Finding]:
    """CRITICAL findings of a `kube-score score -o json` (v2) report, one per check and container."""
    if not isinstance(report, list):
        raise ValueError("a kube-score JSON report is a list of objects")
    found = []
    for obj in report:
        kind = obj["type_meta"]["kind"]
        meta = obj.get("object_meta") or {}
        for result in obj.get("checks") or []:
            if result.get("skipped") or result.get("grade") != KUBE_SCORE_CRITICAL:
                continue
            for comment in result.get("comments") or [{"path": "", "summary": result["check"]["name"]}]:
                found.append(
                    Finding(
                        "kube-score",
                        result["check"]["id"],
                        kind,
                        meta.get("namespace") or "",
                        meta.get("name") or "",
                        comment.get("path") or None,
                        comment.get("summary") or "",
                    )
                )
    return found


def polaris_findings(report: Any) -> list[Finding]:
    """Failed danger-level checks of a `polaris audit --format json` report, at controller, pod and container."""
    if not isinstance(report, dict) or not isinstance(report.get("Results"), list):
        raise ValueError("a Polaris JSON report is a mapping with a Results list")
    found = []
    for obj in report["Results"]:

        def add(results: Any, container: str | None, obj: Any = obj) -> None:
            for check, result in (results or {}).items():
                if result.get("Severity") == "danger" and not result.get("Success"):
                    found.append(
                        Finding(
                            "polaris",
                            check,
                            obj["Kind"],
                            obj.get("Namespace") or "",
                            obj["Name"],
                            container,
                            result.get("Message") or "",
                        )
                    )

        add(obj.get("Results"), None)
        pod = obj.get("PodResult") or {}
        add(pod.get("Results"), None)
        for container in pod.get("ContainerResults") or []:
            add(container.get("Results"), container.get("Name"))
    return found


def _repo_path(path: str) -> str:
    """A report's file path as the accepted-findings file writes it: relative to the repository."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else path


def hadolint_findings(report: Any) -> list[Finding]:
    """Every finding of a `hadolint -f json` report, whatever its level."""
    if not isinstance(report, list):
        raise ValueError("a hadolint JSON report is a list of findings")
    return [
        Finding("hadolint", f["code"], "", "", _repo_path(f["file"]), None, f"line {f['line']}: {f['message']}")
        for f in report
    ]


def actionlint_findings(report: Any) -> list[Finding]:
    """Every error of an `actionlint -format '{{json .}}'` report."""
    if not isinstance(report, list):
        raise ValueError("an actionlint JSON report is a list of errors")
    return [
        Finding("actionlint", f["kind"], "", "", _repo_path(f["filepath"]), None, f"line {f['line']}: {f['message']}")
        for f in report
    ]


PARSERS = {
    "kube-score": kube_score_findings,
    "polaris": polaris_findings,
    "hadolint": hadolint_findings,
    "actionlint": actionlint_findings,
}


def judge(findings: list[Finding], accepted: list[Acceptance], tool: str, stack: str) -> tuple[list[str], list[str]]:
    """(lines to print, problems): accepted findings are listed with their reason; the rest are problems."""
    relevant = [a for a in accepted if a.tool == tool and a.applies_to(stack)]
    used: set[int] = set()
    lines, problems = [], []
    for finding in findings:
        match = next((a for a in relevant if a.matches(finding)), None)
        if match is None:
            problems.append(f"BLOCKING {finding}")
        else:
            used.add(match.index)
            lines.append(f"accepted by {match}: {finding}")
    problems += [
        f"STALE {a}: it accepts no finding{' in stack ' + stack if stack else ''}; "
        "remove it from the accepted-findings file"
        for a in relevant
        if a.index not in used
    ]
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("report", type=Path, help="the tool's JSON report")
    parser.add_argument("--stack", default="", help="the stack the manifests were rendered for (manifest tools)")
    parser.add_argument(
        "--accepted",
        type=Path,
        default=Path(__file__).with_name("accepted-findings.yaml"),
        help="the reviewed accepted-findings file",
    )
    args = parser.parse_args(argv)
    try:
        accepted = load_accepted(args.accepted)
        report = json.loads(args.report.read_text())
        if args.tool in MANIFEST_TOOLS and not args.stack:
            raise ValueError(f"{args.tool} reports need --stack")
        findings = PARSERS[args.tool](report)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
        print(f"{args.tool}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    lines, problems = judge(findings, accepted, args.tool, args.stack)
    for line in lines + problems:
        print(line)
    print(
        f"{args.tool}: {len(findings)} blocking-level findings, {len(lines)} accepted, {len(problems)} problems"
        + (f" (stack {args.stack})" if args.stack else ""),
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
