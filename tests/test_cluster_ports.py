"""`tools/k8s/cluster.sh up` refuses at once when a port it needs is taken: it names the address, the component
and the program holding it, and starts nothing (instead of a component that never becomes ready)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

CLUSTER = Path(__file__).resolve().parent.parent / "tools" / "k8s" / "cluster.sh"

pytestmark = pytest.mark.cluster


def components_running() -> list[str]:
    status = subprocess.run([str(CLUSTER), "status"], capture_output=True, text=True, timeout=60, check=False)
    states = {fields[0]: fields[1] for fields in map(str.split, status.stdout.splitlines()) if len(fields) >= 2}
    assert states.get("etcd") in ("running", "stopped"), f"no component lines in: {status.stdout}{status.stderr}"
    return [name for name, state in states.items() if state == "running"]


def test_up_names_a_port_held_by_another_program_and_starts_nothing() -> None:
    # The check concerns components that are not running, so the cluster is stopped first (test_e2e starts it).
    subprocess.run([str(CLUSTER), "stop"], capture_output=True, timeout=300, check=True)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 2380))  # etcd's peer port
        holder.listen()
        done = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode != 0, "up must fail while etcd's port is taken"
    assert '127.0.0.1:2380 for etcd (held by users:(("python' in done.stderr, done.stderr[-2000:]
    assert "nothing was started" in done.stderr
    assert components_running() == []
