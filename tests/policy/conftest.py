"""The policy pack runs with policy/ as its working directory, so its package imports as `goapp_policy`."""

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "policy"))
sys.path.insert(0, str(ROOT))

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
