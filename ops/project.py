"""Facts about this repository, each defined once: where things are, the stacks, the review stamps."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = REPO_ROOT / "stacks"
STATE_DIR = REPO_ROOT / ".pulumi-state"
DIST_DIR = REPO_ROOT / "dist"
UNIT_SELECTION_FILE = REPO_ROOT / "tests" / "unit-selection"
"""The pytest marker expression of the fast unit tests; the Makefile and the benchmark both read it."""

# What stays bash lives next to what it supervises or bootstraps.
CLUSTER_SH = REPO_ROOT / "tools" / "k8s" / "cluster.sh"
"""Supervises this machine's Kubernetes and registry: up, stop, delete, status, kubeconfig-path."""
PULUMI_BOOTSTRAP = REPO_ROOT / "tools" / "pulumi" / "bootstrap.sh"
"""Builds the Pulumi CLI, language host and plugins; with --print-env only prints their environment."""
DOCKER_UP = REPO_ROOT / "tools" / "docker" / "up.sh"
"""Makes a Docker daemon answer: installs Debian's docker.io and starts dockerd when needed."""
BASE_IMAGES = REPO_ROOT / "tools" / "docker" / "base-images.sh"
"""Builds the local stand-ins for goapp/Dockerfile's base images; prints GO_IMAGE=… and RUNTIME_IMAGE=…."""
SET_DEFAULT_MESSAGE = REPO_ROOT / "goapp" / "scripts" / "set-default-message.sh"
"""Changes goapp's DefaultMessage in a copy of goapp/: the one-line change the image checks rebuild after."""

REVIEW_DIGEST = "sha256:" + "5e" * 32
"""Stands for the digest CI pushed when rendering only for review, the gates and the tests: render mode builds
nothing and writes this into the manifests."""
REVIEW_STAMPS = {"GOAPP_IMAGE_DIGEST": REVIEW_DIGEST, "GOAPP_VERSION": "review", "GOAPP_COMMIT": "review"}
"""Fixed, so the gates' fixtures can be compared with a fresh render."""


def stacks() -> tuple[str, ...]:
    """Every stack of the project: one `stacks/Pulumi.<stack>.yaml` each, in a stable order (local first)."""
    found = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS_DIR.glob("Pulumi.*.yaml"))
    order = {"local": 0, "dev": 1, "staging": 2, "prod": 3}
    return tuple(sorted(found, key=lambda name: (order.get(name, len(order)), name)))


def unit_selection() -> str:
    return UNIT_SELECTION_FILE.read_text().strip()


def pins() -> dict[str, str]:
    """versions.env: every pinned tool version of the project (KEY=value lines; the Makefile includes it)."""
    found = {}
    for line in (REPO_ROOT / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and key.strip():
            found[key.strip()] = value.strip()
    return found


def cache() -> Path:
    """Heavy builds and tools live here, outside the repository ($GOAPP_CACHE, default ~/.cache/goapp)."""
    import os

    return Path(os.environ.get("GOAPP_CACHE") or Path.home() / ".cache" / "goapp")
