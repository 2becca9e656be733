"""Entry point run by the Pulumi engine (Pulumi.yaml `main: infra/`)."""

import sys
from pathlib import Path

# The engine runs this file as a script; make `infra` importable as the package the tests use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import main

main()
