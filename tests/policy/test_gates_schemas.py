"""Schemas generated from the Kubernetes OpenAPI document: named for kubeconform, standalone and strict."""

from pathlib import Path
from typing import Any

from gates import k8s_schemas

OPENAPI: dict[str, Any] = {
    "definitions": {
        "io.k8s.api.apps.v1.Deployment": {
            "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
            "properties": {
                "kind": {"type": "string"},
                "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
            },
        },
        "io.k8s.api.apps.v1.DeploymentSpec": {
            "properties": {
                "replicas": {"type": "integer"},
                "maxSurge": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["replicas"],
        },
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
        "io.k8s.api.core.v1.Service": {
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Service"}],
            "properties": {"kind": {"type": "string", "enum": ["Service"]}},
        },
        "io.k8s.api.networking.v1.NetworkPolicy": {
            "x-kubernetes-group-version-kind": [
                {"group": "networking.k8s.io", "version": "v1", "kind": "NetworkPolicy"}
            ],
            "properties": {},
        },
    }
}


def test_files_are_named_as_kubeconform_looks_them_up() -> None:
    assert set(k8s_schemas.from_openapi(OPENAPI)) == {
        "deployment-apps-v1.json",
        "service-v1.json",
        "networkpolicy-networking-v1.json",
    }


def test_a_schema_carries_every_definition_it_reaches_and_nothing_else() -> None:
    schema = k8s_schemas.from_openapi(OPENAPI)["deployment-apps-v1.json"]
    assert set(schema["definitions"]) == {
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.apps.v1.DeploymentSpec",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    }
    assert schema["$schema"] == k8s_schemas.DRAFT


def test_objects_with_properties_are_strict_and_maps_stay_open() -> None:
    spec = k8s_schemas.from_openapi(OPENAPI)["deployment-apps-v1.json"]["definitions"][
        "io.k8s.api.apps.v1.DeploymentSpec"
    ]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": ["string", "null"]}
    assert spec["required"] == ["replicas"]


def test_types_accept_null_except_enums_and_int_or_string_takes_both() -> None:
    schemas = k8s_schemas.from_openapi(OPENAPI)
    definitions = schemas["deployment-apps-v1.json"]["definitions"]
    assert definitions["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["type"] == ["integer", "null"]
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {"type": ["string", "integer", "null"]}
    assert schemas["service-v1.json"]["properties"]["kind"] == {"type": "string", "enum": ["Service"]}


def test_crd_schemas_are_generated_per_served_version(tmp_path: Path) -> None:
    crd = tmp_path / "crd.yaml"
    crd.write_text(
        """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties: {size: {type: integer}}
            status: {type: object, x-kubernetes-preserve-unknown-fields: true, properties: {}}
"""
    )
    schema = k8s_schemas.from_crds([crd])["widget-example-v1.json"]
    assert schema["properties"]["spec"]["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["status"]
