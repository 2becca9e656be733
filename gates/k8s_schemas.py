"""Generate kubeconform's JSON schemas offline from the Kubernetes OpenAPI document of the pinned version.

    python3 gates/k8s_schemas.py --openapi <k8s.io/kubernetes module>/api/openapi-spec/swagger.json --out DIR
    python3 gates/k8s_schemas.py --crds dist/<stack>/0-crd --out DIR

Writes one standalone, strict schema per kind, named as kubeconform looks them up
(`{{ .ResourceKind }}{{ .KindSuffix }}.json`, e.g. deployment-apps-v1.json, service-v1.json):
- standalone: every referenced definition is copied into the file's own "definitions", so no file needs another;
- strict: an object that lists its properties admits no other property, so a misspelt field fails instead of
  being dropped silently by the API server;
- a null value is accepted where the field has a type, as the API server treats null as "unset";
- IntOrString and Quantity accept both forms, as the API server does.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

DRAFT = "http://json-schema.org/draft-07/schema#"
REF_PREFIX = "#/definitions/"
SPECIAL_TYPES = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": ["string", "integer", "null"]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": ["string", "number", "null"]},
}


def file_name(group: str, version: str, kind: str) -> str:
    """kubeconform's name: kind, first label of the group (none for core), version, all lower case."""
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix.lower()}.json"


def _tighten(node: Any) -> Any:
    """Strict objects and nullable types, applied to every sub-schema of a definition."""
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {
        key: (value if key in ("enum", "required", "default", "example") else _tighten(value))
        for key, value in node.items()
    }
    if "properties" in node:
        node["properties"] = {name: _tighten(schema) for name, schema in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    kind = node.get("type")
    if isinstance(kind, str) and "enum" not in node:
        node["type"] = [kind, "null"]
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["type"] = ["string", "integer", "null"]
    return node


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref[len(REF_PREFIX) :]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def standalone(definitions: dict[str, Any], root: str) -> dict[str, Any]:
    """The root definition with every definition it reaches, transitively, under its own "definitions"."""
    reached: dict[str, Any] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        if name not in definitions:
            raise KeyError(f"definition {name} is referenced but missing from the OpenAPI document")
        reached[name] = SPECIAL_TYPES.get(name) or _tighten(copy.deepcopy(definitions[name]))
        pending.extend(_refs(reached[name]))
    schema = {"$schema": DRAFT, **reached[root]}
    schema["definitions"] = reached
    return schema


def from_openapi(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """File name -> schema for every kind the OpenAPI (Swagger 2.0) document defines."""
    definitions = document.get("definitions")
    if not isinstance(definitions, dict) or not definitions:
        raise ValueError("not a Kubernetes OpenAPI v2 document: it has no definitions")
    out: dict[str, dict[str, Any]] = {}
    for name, definition in sorted(definitions.items()):
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            target = file_name(gvk.get("group", ""), gvk["version"], gvk["kind"])
            if target in out:
                raise ValueError(f"two definitions map to {target}; the naming scheme cannot tell them apart")
            out[target] = standalone(definitions, name)
    return out


def from_crds(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """File name -> schema for every served version of the CustomResourceDefinitions in the YAML files."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document.get("spec", {})
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if not schema:
                    raise ValueError(
                        f"{path}: CRD {spec.get('names', {}).get('kind')} {version.get('name')} has no schema"
                    )
                target = file_name(spec["group"], version["name"], spec["names"]["kind"])
                out[target] = {"$schema": DRAFT, **_tighten(copy.deepcopy(schema))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--openapi", type=Path, help="the Kubernetes swagger.json (api/openapi-spec/swagger.json)")
    source.add_argument("--crds", type=Path, help="a directory of CustomResourceDefinition YAML (e.g. dist/x/0-crd)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the schemas into")
    args = parser.parse_args(argv)
    try:
        if args.openapi:
            schemas = from_openapi(json.loads(args.openapi.read_text()))
        else:
            schemas = from_crds(sorted(p for p in args.crds.rglob("*") if p.suffix in (".yaml", ".yml")))
    except (OSError, ValueError, KeyError, yaml.YAMLError) as error:
        print(f"k8s_schemas: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (args.out / name).write_text(json.dumps(schema, indent=1, sort_keys=True))
    print(f"k8s_schemas: wrote {len(schemas)} schemas to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
