#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv, the one Pulumi.yaml names): the pins of requirements.txt,
# then the project itself (pyproject.toml: the `infra` and `goapp_policy` packages), installed editable so the
# program, the tests and other programs import the working tree's code.
# Idempotent: a stamp holding both files' hash skips the install when nothing changed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/.venv"
stamp="$venv/.requirements.sha256"
want="$(cat "$repo/requirements.txt" "$repo/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
echo "venv: installing requirements.txt and the project into .venv" >&2
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements.txt"
# No build isolation: the venv's own setuptools builds it, and every dependency is already pinned above.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
echo "$want" >"$stamp"
