"""Run the resource and stack policies over rendered manifests (dist/<stack>/), without the Pulumi engine.

    python -m goapp_policy.manifests --stack prod dist/prod

Exit status 1 when any policy is violated, 2 on unreadable input. The same checks run inside
`pulumi preview --policy-pack policy`; this is the fast path for render mode and CI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from goapp_policy import checks
from goapp_policy.workloads import Props, type_token

RESOURCE_CHECKS = (checks.pod_security, checks.read_only_root, checks.container_resources, checks.health_probes)


class ManifestError(ValueError):
    """A file that is not a set of Kubernetes objects."""


def load(paths: Iterable[Path]) -> list[tuple[str, Props]]:
    """Every object in the YAML files under paths, as (Pulumi type token, object), in file order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    if not files:
        raise ManifestError(f"no .yaml or .yml file under {', '.join(map(str, paths))}")
    objects: list[tuple[str, Props]] = []
    for file in files:
        try:
            documents = list(yaml.safe_load_all(file.read_text()))
        except yaml.YAMLError as error:
            raise ManifestError(f"{file}: not valid YAML: {error}") from error
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
                raise ManifestError(f"{file}: every document must be a Kubernetes object with apiVersion and kind")
            objects.append((type_token(str(document["apiVersion"]), str(document["kind"])), document))
    return objects


def violations(
    objects: Sequence[tuple[str, Props]],
    stack: str,
    tag_stacks: Iterable[str] = checks.TAG_STACKS_DEFAULT,
    prod_stacks: Iterable[str] = checks.PROD_STACKS_DEFAULT,
) -> list[str]:
    found = [message for token, obj in objects for check in RESOURCE_CHECKS for message in check(token, obj)]
    found += [message for token, obj in objects for message in checks.images_by_digest(token, obj, stack, tag_stacks)]
    found += checks.prod_availability(objects, stack, prod_stacks)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="the stack the manifests were rendered for (e.g. prod)")
    parser.add_argument("paths", nargs="+", type=Path, help="manifest files or directories (searched recursively)")
    args = parser.parse_args(argv)
    try:
        objects = load(args.paths)
    except (ManifestError, OSError) as error:
        print(f"policy: {error}", file=sys.stderr)
        return 2
    found = violations(objects, args.stack)
    for message in found:
        print(message)
    print(f"policy: {len(objects)} objects, {len(found)} violations (stack {args.stack})", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
