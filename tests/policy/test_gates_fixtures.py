"""The committed good fixtures are exactly what the program renders today (`make gates` renders first)."""

from pathlib import Path

import pytest

from gates import fixture_sets as fixtures

pytestmark = pytest.mark.gates
DIST = Path(__file__).resolve().parents[2] / "dist"


@pytest.mark.parametrize("stack", fixtures.STACKS)
def test_the_good_fixture_is_a_fresh_render(stack: str) -> None:
    assert fixtures.stale(DIST, [stack]) == [], "run `make gates-fixtures` and review the diff"
