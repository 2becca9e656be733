"""Bounded traffic against a goapp URL on loopback, for tests that change the deployment while clients use it.

Readers ask `/hello`; writers PUT notes and read each back at once; slow uploaders keep a PUT in flight for
seconds, sending the body in pieces, so a pod that stops or starts meets an upload in progress. Every note
written is remembered with its exact content and read back at the end: a lost or torn write is reported as such.
The load stops by itself after `seconds` or `max_requests`, and only ever talks to 127.0.0.0/8: a URL whose host
is a name under `.test` (reserved, never resolved on the internet) is sent to 127.0.0.1 with that name as its Host
header, which is how the tests address one route of the loopback ingress controller among several.

Clients reuse keep-alive connections. Like every HTTP client users run (Go's transport, browsers, curl), a
request that fails on a reused connection before any byte of an answer arrived is sent again once on a fresh
one: the server may close an idle connection at the very moment the client reuses it. Anything else — an error
status, a reset mid-answer, a refused connection — is a failed request.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class LoopbackOnly(ValueError):
    """Load may only target this machine."""


@dataclass
class Report:
    requests: Counter[str] = field(default_factory=Counter)
    """Successful requests by kind."""
    failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    """Notes whose content read back at the end differs from what was written last (or is missing)."""
    values: Counter[str] = field(default_factory=Counter)
    """What /hello answered, by message: which versions served."""

    @property
    def failed(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        total = sum(self.requests.values())
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.requests.items()))
        return f"{total} requests ({kinds}); {self.failed} failed; {len(self.lost)} lost or torn writes"


TEST_DOMAIN = ".test"


def target(url: str) -> tuple[str, int, str | None, str]:
    """Where a request for `url` connects (host, port), the Host header it sends (None: the default), and the
    path prefix; anything but loopback and `*.test` names is refused."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 80
    prefix = parts.path.rstrip("/")
    if host.endswith(TEST_DOMAIN):
        return "127.0.0.1", port, f"{host}:{port}", prefix
    if not is_loopback(host):
        raise LoopbackOnly(f"{url}: load only targets 127.0.0.0/8 (or a *.test name, sent to 127.0.0.1)")
    return host, port, None, prefix


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that would have to be resolved: not provably this machine


class Client:
    """One keep-alive connection to the app, reopened when the server closes it."""

    def __init__(self, host: str, port: int, token: str, timeout: float = 30, host_header: str | None = None) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.host_header = host_header
        self.connection: http.client.HTTPConnection | None = None
        self.used = False

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.used = False
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def request(
        self, method: str, path: str, body: bytes | None = None, pieces: int = 1, pause: float = 0
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            reused = self.used
            connection = self._connection()
            started_answer = False
            try:
                headers = {"Authorization": f"Bearer {self.token}"}
                if self.host_header:
                    headers["Host"] = self.host_header
                if body is None:
                    connection.request(method, path, headers=headers)
                else:
                    headers["Content-Length"] = str(len(body))
                    connection.putrequest(method, path, skip_host=self.host_header is not None)
                    for name, value in headers.items():
                        connection.putheader(name, value)
                    connection.endheaders()
                    size = -(-len(body) // pieces)
                    for start in range(0, len(body), size):
                        connection.send(body[start : start + size])
                        if pause and start + size < len(body):
                            time.sleep(pause)
                response = connection.getresponse()
                started_answer = True
                data = response.read()
                self.used = True
                if response.will_close:
                    self.close()
                return response.status, data
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, OSError):
                self.close()
                # Only a reused connection that broke before any answer is retried, and only once.
                if attempt == 2 or not reused or started_answer:
                    raise
        raise AssertionError("unreachable")


class Traffic:
    """Readers, writers and slow uploaders against `url` until stopped, `seconds` pass or `max_requests` are made."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        readers: int = 2,
        writers: int = 2,
        slow_uploads: int = 2,
        slow_seconds: float = 3.0,
        seconds: float = 600,
        max_requests: int = 200_000,
    ) -> None:
        self.host, self.port, self.host_header, self.prefix = target(url)
        self.token = token
        self.plan = {"reader": readers, "writer": writers, "slow": slow_uploads}
        self.slow_seconds = slow_seconds
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.report = Report()
        self.expected: dict[str, set[bytes | None]] = {}
        """What each note may hold at the end: the content of its last successful write, plus the content of any
        later write that failed (it may have landed or not; None: the note may not exist)."""
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.run_id = secrets.token_hex(4)

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        loops = {"reader": self._reader, "writer": self._writer, "slow": self._slow}
        for kind, count in self.plan.items():
            for worker in range(count):
                thread = threading.Thread(target=loops[kind], args=(worker,), name=f"{kind}-{worker}", daemon=True)
                thread.start()
                self.threads.append(thread)

    def _running(self) -> bool:
        with self.lock:
            made = sum(self.report.requests.values()) + self.report.failed
        return not self.stopping.is_set() and time.monotonic() < self.deadline and made < self.max_requests

    def _ok(self, kind: str) -> None:
        with self.lock:
            self.report.requests[kind] += 1

    def _fail(self, what: str) -> None:
        with self.lock:
            self.report.failures.append(f"{time.strftime('%H:%M:%S')} {what}")

    def _call(
        self, client: Client, kind: str, method: str, path: str, body: bytes | None = None, **slow: float
    ) -> tuple[int, bytes] | None:
        try:
            status, data = client.request(method, self.prefix + path, body, **slow)  # type: ignore[arg-type]
        except OSError as error:
            self._fail(f"{kind} {method} {path}: {type(error).__name__}: {error}")
            return None
        if status >= 300:
            self._fail(f"{kind} {method} {path}: HTTP {status} {data[:200]!r}")
            return None
        self._ok(kind)
        return status, data

    def _reader(self, worker: int) -> None:
        client = Client(self.host, self.port, self.token, host_header=self.host_header)
        while self._running():
            answer = self._call(client, "hello", "GET", "/hello")
            if answer is not None:
                with self.lock:
                    self.report.values[json.loads(answer[1]).get("message", "")] += 1
            time.sleep(0.01 if answer is not None else 0.05)
        client.close()

    def _write(self, client: Client, kind: str, name: str, body: bytes, **slow: float) -> bool:
        done = self._call(client, kind, "PUT", f"/notes/{name}", body, **slow) is not None
        with self.lock:
            if done:
                self.expected[name] = {body}
            else:
                # A failed write may or may not have landed; it is counted as a failure already.
                self.expected[name] = self.expected.get(name, {None}) | {body}
        return done

    def _writer(self, worker: int) -> None:
        client = Client(self.host, self.port, self.token, host_header=self.host_header)
        index = 0
        while self._running():
            name = f"load-{self.run_id}-w{worker}-{index % 50}"
            body = f"{name} version {index} ".encode() * 20
            if self._write(client, "write", name, body):
                answer = self._call(client, "read", "GET", f"/notes/{name}")
                if answer is not None and answer[1] != body:
                    self._fail(f"read GET /notes/{name}: got {len(answer[1])} bytes, not the {len(body)} just written")
            else:
                time.sleep(0.05)  # a failing server is not hammered
            index += 1
        client.close()

    def _slow(self, worker: int) -> None:
        client = Client(self.host, self.port, self.token, timeout=self.slow_seconds + 60, host_header=self.host_header)
        index = 0
        pieces = 10
        while self._running():
            name = f"load-{self.run_id}-s{worker}-{index % 5}"
            body = (f"{name} upload {index} ".encode() * 4000)[: 64 * 1024]
            if not self._write(
                client, "slow-upload", name, body, pieces=pieces, pause=self.slow_seconds / (pieces - 1)
            ):
                time.sleep(0.05)
            index += 1
        client.close()

    def stop(self) -> Report:
        """Stop the load, then read back every note it wrote: each must hold exactly its last content."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=self.slow_seconds + 90)
        client = Client(self.host, self.port, self.token, host_header=self.host_header)
        for name, allowed in sorted(self.expected.items()):
            try:
                status, data = client.request("GET", f"{self.prefix}/notes/{name}")
            except OSError as error:
                self.report.lost.append(f"{name}: {type(error).__name__}: {error}")
                continue
            found = data if status == 200 else None
            if status not in (200, 404) or found not in allowed:
                sizes = sorted(len(body) for body in allowed if body is not None)
                self.report.lost.append(f"{name}: HTTP {status}, {len(data)} bytes; expected one of {sizes} bytes")
        client.close()
        return self.report
