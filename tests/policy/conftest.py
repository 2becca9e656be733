"""Fixtures of the policy tests; the pack's package `goapp_policy` is installed with the project (pyproject.toml)."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

GOOD = ROOT / "gates" / "fixtures" / "good"


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture
def prod_objects() -> list[dict[str, Any]]:
    """The good prod fixture, one dict per object, fresh for each test to mutate."""
    return [_load(p) for p in sorted((GOOD / "prod" / "1-manifest").glob("*.yaml"))]


@pytest.fixture
def deployment(prod_objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The good Deployment: restricted PSS, resources, distinct probes, image by digest."""
    return copy.deepcopy(next(o for o in prod_objects if o["kind"] == "Deployment"))


@pytest.fixture
def container_of() -> Callable[[dict[str, Any]], dict[str, Any]]:
    def first(deployment: dict[str, Any]) -> dict[str, Any]:
        container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
        return container

    return first
