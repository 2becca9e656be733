import sys
from pathlib import Path

# Tests import the program as the `infra` package and the mock harness as `harness`.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
