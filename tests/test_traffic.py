"""tests/traffic.py against a real goapp process on loopback: it counts what it made, sees what it should see,
and a failure it must see (the server killed under load) is reported, not hidden."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from traffic import LoopbackOnly, Traffic, target

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "traffic-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def goapp_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("goapp") / "goapp"
    subprocess.run(
        ["go", "build", "-trimpath", "-o", str(binary), "."],
        cwd=REPO_ROOT / "goapp",
        env={**os.environ, "CGO_ENABLED": "0"},
        check=True,
        capture_output=True,
    )
    return binary


@pytest.fixture
def goapp(goapp_binary: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / "data"),
        "NOTES_TOKEN": TOKEN,
        "APP_MESSAGE": "traffic",
        "LOG_LEVEL": "warn",
        "SHUTDOWN_DRAIN": "0s",
    }
    process = subprocess.Popen([str(goapp_binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if urllib.request.urlopen(f"{url}/readyz", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.kill()
        process.wait()


def test_load_is_counted_and_every_write_reads_back(goapp: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = goapp
    traffic = Traffic(url, TOKEN, slow_seconds=1.0, seconds=4)
    with traffic:
        time.sleep(4)
    report = traffic.report
    assert report.failed == 0, report.failures[:5]
    assert report.lost == []
    assert report.requests["hello"] > 0
    assert report.requests["write"] > 0
    assert report.requests["read"] == report.requests["write"]
    assert report.requests["slow-upload"] >= 2, "each slow uploader finished at least one upload"
    assert report.values == {"traffic": report.requests["hello"]}
    assert "0 failed; 0 lost or torn writes" in report.summary()


def test_a_server_that_dies_under_load_is_reported(goapp: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, process = goapp
    traffic = Traffic(url, TOKEN, slow_seconds=2.0, seconds=8)
    traffic.start()
    time.sleep(1.5)
    process.send_signal(signal.SIGKILL)
    time.sleep(1)
    report = traffic.stop()
    assert report.failed > 0, "requests to a dead server must count as failures"
    assert any("slow-upload PUT" in failure for failure in report.failures), "an upload in flight was cut off"
    assert report.lost, "notes cannot be read back from a dead server"


def test_the_load_is_bounded_by_count() -> None:
    traffic = Traffic("http://127.0.0.1:9", TOKEN, readers=1, writers=0, slow_uploads=0, max_requests=5)
    traffic.start()
    time.sleep(1)
    report = traffic.stop()
    assert report.failed <= 5 + 1, "a refused connection is a failure, and the count bounds them too"


def test_only_loopback_is_a_target() -> None:
    with pytest.raises(LoopbackOnly, match=r"load only targets 127\.0\.0\.0/8"):
        Traffic("http://192.0.2.1:80", TOKEN)
    with pytest.raises(LoopbackOnly):
        Traffic("http://example.com/", TOKEN)
    assert target("http://e2e.test:8000/x") == ("127.0.0.1", 8000, "e2e.test:8000", "/x"), "*.test goes to loopback"
    assert target("http://127.0.0.1:30080") == ("127.0.0.1", 30080, None, "")
