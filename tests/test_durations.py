"""Go durations as goapp reads them: the forms time.ParseDuration accepts, and a clear error otherwise."""

from decimal import Decimal

import pytest

from infra.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", "10"),
        ("500ms", "0.5"),
        ("1m30s", "90"),
        ("1.5h", "5400"),
        ("0", "0"),
        ("250us", "0.00025"),
        ("2µs", "0.000002"),
        ("-1s", "-1"),
    ],
)
def test_go_durations(text: str, seconds: str) -> None:
    assert parse_duration(text) == Decimal(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "1d", "1m30", "ten seconds", "1s2"])
def test_anything_else_is_refused_with_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Go duration such as 500ms, 10s or 1m30s"):
        parse_duration(text)
