#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv, the one Pulumi.yaml names) from requirements.txt.
# Idempotent: a stamp holding the requirements' hash skips the install when nothing changed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$repo/requirements.txt" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
echo "venv: installing requirements.txt into .venv" >&2
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements.txt"
echo "$want" >"$stamp"
