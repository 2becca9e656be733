"""The gates' fixtures come from the program itself: the good sets are renders, the bad ones small changes to them.

    python3 gates/fixture_sets.py regenerate [--dist dist] [STACK...]   copy dist/<stack>/ renders into good/<stack>/
    python3 gates/fixture_sets.py check [--dist dist] [STACK...]        exit 1 when a committed good set is stale
    python3 gates/fixture_sets.py materialize CASE OUT                   write bad case CASE under OUT/CASE/<stack>/

`good/<stack>/1-manifest/` holds every object `make render-all` writes for the stack (fixed review stamps and
digest, see the Makefile) except Secrets: their rendered YAML is plaintext, and a fixture is committed. Each bad
case in `bad.yaml` names a good stack and JSON Patch (RFC 6902) operations for objects of a kind, so a bad
fixture is the program's own output with one deliberate defect, and follows the program when it changes. A
patch starts with `test` operations where a path depends on the render's shape, so a reshaped render fails
loudly instead of patching the wrong thing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from ops import project

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "gates" / "fixtures"
GOOD = FIXTURES / "good"
BAD_CASES = FIXTURES / "bad.yaml"
MANIFESTS = "1-manifest"
STACKS = project.stacks()
SKIPPED_KINDS = frozenset({"Secret"})


class FixtureError(ValueError):
    """A bad case that cannot be applied to its good set."""


def rendered(stack_dir: Path) -> dict[str, str]:
    """The files of a rendered stack that belong in a fixture, by name."""
    files = {}
    for path in sorted((stack_dir / MANIFESTS).glob("*.yaml")):
        text = path.read_text()
        if yaml.safe_load(text).get("kind") not in SKIPPED_KINDS:
            files[path.name] = text
    return files


def stale(dist: Path, stacks: Iterable[str]) -> list[str]:
    """One line per difference between the committed good sets and fresh renders."""
    problems = []
    for stack in stacks:
        fresh = rendered(dist / stack)
        if not fresh:
            problems.append(f"{stack}: nothing rendered under {dist / stack / MANIFESTS} (run `make render-all`)")
            continue
        committed = {p.name: p.read_text() for p in sorted((GOOD / stack / MANIFESTS).glob("*.yaml"))}
        for name in sorted(fresh.keys() - committed.keys()):
            problems.append(f"{stack}: {name} is rendered but not in the fixture")
        for name in sorted(committed.keys() - fresh.keys()):
            problems.append(f"{stack}: {name} is in the fixture but no longer rendered")
        for name in sorted(fresh.keys() & committed.keys()):
            if fresh[name] != committed[name]:
                problems.append(f"{stack}: {name} differs from the render")
    return problems


def regenerate(dist: Path, stacks: Iterable[str]) -> None:
    for stack in stacks:
        fresh = rendered(dist / stack)
        if not fresh:
            raise FixtureError(f"{stack}: nothing rendered under {dist / stack / MANIFESTS}")
        target = GOOD / stack / MANIFESTS
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.yaml"):
            old.unlink()
        for name, text in fresh.items():
            (target / name).write_text(text)


def bad_cases() -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = yaml.safe_load(BAD_CASES.read_text())
    return cases


def apply_case(case: dict[str, Any], objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The good objects (by file name) with the case's changes; a change matching no object is an error."""
    result = dict(objects)
    for change in case["changes"]:
        kind = change["kind"]
        names = [name for name, obj in result.items() if obj.get("kind") == kind]
        if not names:
            raise FixtureError(f"no {kind} in the good set to change")
        for name in names:
            if change.get("remove"):
                del result[name]
                continue
            try:
                result[name] = jsonpatch.apply_patch(result[name], change["patch"])
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise FixtureError(f"{kind} in {name}: {error}") from error
    return result


def materialize(name: str, out: Path) -> Path:
    """Write bad case `name` as a rendered stack directory under `out`; return that directory."""
    cases = bad_cases()
    if name not in cases:
        raise FixtureError(f"unknown bad case {name!r}; gates/fixtures/bad.yaml has {', '.join(sorted(cases))}")
    case = cases[name]
    stack = case["stack"]
    good = {p.name: yaml.safe_load(p.read_text()) for p in sorted((GOOD / stack / MANIFESTS).glob("*.yaml"))}
    target = out / name / stack / MANIFESTS
    target.mkdir(parents=True, exist_ok=True)
    for file_name, obj in apply_case(case, good).items():
        (target / file_name).write_text(f"# {case['reason']}\n" + yaml.safe_dump(obj, sort_keys=False))
    directory: Path = target.parent
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("regenerate", "check"):
        sub = commands.add_parser(command)
        sub.add_argument("--dist", type=Path, default=ROOT / "dist")
        sub.add_argument("stacks", nargs="*", default=list(STACKS))
    sub = commands.add_parser("materialize")
    sub.add_argument("case")
    sub.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "regenerate":
            regenerate(args.dist, args.stacks)
        elif args.command == "check":
            problems = stale(args.dist, args.stacks)
            for problem in problems:
                print(f"fixtures: {problem}", file=sys.stderr)
            if problems:
                print("fixtures: stale; run `make gates-fixtures` and review the diff", file=sys.stderr)
                return 1
        else:
            print(materialize(str(args.case), Path(args.out)))
    except FixtureError as error:
        print(f"fixtures: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
