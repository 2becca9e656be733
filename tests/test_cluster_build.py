"""tools/k8s/build.sh without building anything: `background` detaches the build from its caller (whose lock it
must not keep) and logs it, and print-bin-dirs names every add-on. A stand-in `go` that only sleeps takes the
place of the compiler."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parent.parent / "tools" / "k8s" / "build.sh"


@pytest.fixture
def sleeping_go(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """An environment whose `go` records its pid and sleeps, and the file it records to; the background build's
    session is killed afterwards."""
    bin_dir, pid_file = tmp_path / "bin", tmp_path / "go.pid"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    (bin_dir / "go").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GOAPP_CACHE": str(tmp_path / "cache")}
    yield env, pid_file
    if pid_file.exists():
        os.killpg(os.getpgid(int(pid_file.read_text())), signal.SIGKILL)


def test_background_returns_at_once_and_keeps_no_descriptor_of_its_caller(
    sleeping_go: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, pid_file = sleeping_go
    lock = tmp_path / "caller.lock"
    started = time.monotonic()
    # As `flock FILE make test` would run it: the caller holds FILE's lock on a descriptor build.sh inherits.
    done = subprocess.run(
        ["flock", str(lock), str(BUILD), "background"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    assert "building in the background" in done.stderr
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the background build never ran go"
    go_pid = int(pid_file.read_text())
    assert os.getsid(go_pid) != os.getsid(0), "the build must run in its own session"
    # The build still runs, and the caller's lock is free.
    assert Path(f"/proc/{go_pid}").exists()
    assert subprocess.run(["flock", "-n", str(lock), "true"], timeout=10).returncode == 0
    log = Path(env["GOAPP_CACHE"]) / "k8s" / "background-build.log"
    assert "[k8s-build] building" in log.read_text()


def test_print_bin_dirs_names_every_add_on_and_the_gateway_crds(tmp_path: Path) -> None:
    env = {**os.environ, "GOAPP_CACHE": str(tmp_path)}
    printed = subprocess.run([str(BUILD), "print-bin-dirs"], env=env, capture_output=True, text=True, check=True)
    dirs = dict(re.findall(r"^([A-Z_]+)=(.+)$", printed.stdout, flags=re.M))
    for name, prefix in {
        "TRAEFIK_BIN": "traefik-v3.6.12-",
        "METRICS_SERVER_BIN": "metrics-server-v0.8.0-",
        "PROMETHEUS_BIN": "prometheus-v0.316.0-",
        "KWOK_BIN": "kwok-v0.7.0-",
    }.items():
        assert dirs[name].startswith(f"{tmp_path}/k8s/{prefix}"), dirs[name]
    assert dirs["GATEWAY_CRDS"] == f"{tmp_path}/k8s/gateway-api-v1.6.3/crds"


def test_an_unknown_target_is_refused_by_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BUILD), "trafik"], env={**os.environ, "GOAPP_CACHE": str(tmp_path)}, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "unknown target 'trafik'" in done.stderr
    assert "traefik, metrics-server, prometheus, kwok, gateway-crds" in done.stderr
