"""Harness of the official-SDK suite: the `switchyard-mock` upstream and the real `switchyard`
binary, each a child process on 127.0.0.1, with one OAuth account per upstream dialect.

Binaries: `SWITCHYARD_BIN` and `SWITCHYARD_MOCK_BIN` (default: target/debug/ of this checkout;
relative paths are taken from the working directory).
Every child process is stopped at teardown, whatever happened; a failing test's gateway log is
printed with the failure (pytest shows captured output of failed tests only).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Relative to the working directory pytest was started in (the children run elsewhere).
SWITCHYARD_BIN = Path(os.environ.get("SWITCHYARD_BIN") or ROOT / "target" / "debug" / "switchyard").resolve()
MOCK_BIN = Path(os.environ.get("SWITCHYARD_MOCK_BIN") or ROOT / "target" / "debug" / "switchyard-mock").resolve()

# The client key the gateway requires (`api-keys`), and the management key.
CLIENT_KEY = "sdk-client-key"
MANAGEMENT_KEY = "sdk-management-key"
# Every account's access token; the mock upstream refuses any other credential.
UPSTREAM_TOKEN = "sdk-upstream-token"
GEMINI_PROJECT = "sdk-project-1"

# One model per upstream account (each account serves its provider's catalogue).
CLAUDE_MODEL = "claude-sonnet-4-5"
CODEX_MODEL = "gpt-5.1-codex"
GEMINI_MODEL = "gemini-2.5-pro"

# Upper bound for one start-up step (a process, a port); nothing sleeps a fixed time.
STEP_TIMEOUT = 20.0
# Per-request timeout the SDK clients use.
REQUEST_TIMEOUT = 30.0

# Every child process started by this session, stopped at exit if a fixture could not.
_children: list[subprocess.Popen] = []


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    for proc in _children:
        _stop(proc)


def _require_binary(path: Path, how: str) -> None:
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.exit(f"{path} is not an executable; build it first ({how})", returncode=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body=None, headers=None, timeout=10.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _iso(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.timezone.utc) + delta).isoformat(timespec="seconds")


class Mock:
    """`switchyard-mock`: the mock upstream APIs and their control endpoint."""

    def __init__(self, workdir: Path):
        self.log_path = workdir / "mock.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(MOCK_BIN)], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        _children.append(self.proc)
        line = self._first_line()
        info = json.loads(line)
        self.base: str = info["base"]
        self.control: str = info["control"]
        self.upstream_urls_yaml: str = info["upstream_urls_yaml"]
        # `upstream-urls` entries (no header) for the xAI and Kimi device-login servers.
        self.login_urls_yaml: str = info["login_urls_yaml"]
        self.fixtures_dir = Path(info["fixtures_dir"])

    def _first_line(self) -> bytes:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + STEP_TIMEOUT
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError(f"switchyard-mock printed no JSON line in {STEP_TIMEOUT}s: {self.log()}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"switchyard-mock exited ({self.proc.wait()}): {self.log()}")
            buffer += chunk
        return buffer.split(b"\n", 1)[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def _ctl(self, method: str, path: str, body=None):
        status, raw = _http(method, f"{self.control}/__ctl/{path}", body)
        if status != 200:
            raise RuntimeError(f"mock control {path} {body!r}: {status} {raw!r}")
        return json.loads(raw)

    def replay(self, api: str, file: str) -> None:
        """`api`: anthropic, openai-chat, openai-responses (also the Codex backend), gemini."""
        self._ctl("POST", "replay", {"api": api, "file": file})

    def fault(self, status: int, retry_after: int | None = None, body=None) -> None:
        self._ctl("POST", "fault", {"status": status, "retry_after": retry_after, "body": body})

    def drop_after(self, events: int | None) -> None:
        self._ctl("POST", "drop-after", {"events": events})

    def require_bearer(self, token: str | None) -> None:
        self._ctl("POST", "auth", {"bearer": token} if token else {})

    def require_project(self, project: str | None) -> None:
        self._ctl("POST", "project", {"project": project})

    def reset(self) -> None:
        self._ctl("POST", "reset")

    def requests(self) -> list[dict]:
        return self._ctl("GET", "requests")

    def fixture(self, file: str) -> str:
        return (self.fixtures_dir / file).read_text()

    def fixture_json(self, file: str):
        return json.loads(self.fixture(file))

    def fixture_chunks(self, file: str) -> list:
        return [json.loads(line) for line in self.fixture(file).splitlines() if line.strip()]

    def stop(self) -> None:
        _stop(self.proc)


class PortTaken(RuntimeError):
    """switchyard could not bind the port picked for it."""


class Gateway:
    """The `switchyard` binary with its own config, auth dir and port."""

    def __init__(self, workdir: Path, mock: Mock, extra_yaml: str = ""):
        self.workdir = workdir
        self.mock = mock
        self.auth_dir = workdir / "auths"
        self.auth_dir.mkdir(mode=0o700)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "config.yaml"
        self.log_path = workdir / "switchyard.log"
        self._write_accounts()
        self.config_path.write_text(
            "host: 127.0.0.1\n"
            f"port: {self.port}\n"
            f"auth-dir: {json.dumps(str(self.auth_dir))}\n"
            "remote-management:\n"
            f"  secret-key: {json.dumps(MANAGEMENT_KEY)}\n"
            f"api-keys:\n  - {json.dumps(CLIENT_KEY)}\n"
            f"{mock.upstream_urls_yaml}"
            f"{extra_yaml}"
        )
        self.config_path.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if k != "MANAGEMENT_PASSWORD"}
        env.update(HOME=str(workdir), RUST_LOG=os.environ.get("RUST_LOG", "info"),
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(SWITCHYARD_BIN), "--config", str(self.config_path)],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        _children.append(self.proc)
        self._wait_healthy()

    def _write_accounts(self) -> None:
        day = dt.timedelta(days=1)
        accounts = {
            "claude-a@example.com.json": {
                "type": "claude", "email": "a@example.com", "access_token": UPSTREAM_TOKEN,
                "refresh_token": "rt-claude-a", "expired": _iso(day),
            },
            # Codex renews 5 days ahead of expiry: a month keeps the refresher away.
            "codex-sdk@example.com-plus.json": {
                "type": "codex", "email": "sdk@example.com", "access_token": UPSTREAM_TOKEN,
                "refresh_token": "rt-codex", "account_id": "acct-sdk", "expired": _iso(30 * day),
            },
            f"gemini-g@example.com-{GEMINI_PROJECT}.json": {
                "type": "gemini", "email": "g@example.com", "project_id": GEMINI_PROJECT,
                "auto": False, "checked": True,
                "token": {
                    "access_token": UPSTREAM_TOKEN, "refresh_token": "rt-gemini",
                    "token_type": "Bearer", "expiry": _iso(day),
                },
            },
        }
        for name, body in accounts.items():
            path = self.auth_dir / name
            path.write_text(json.dumps(body, indent=2))
            path.chmod(0o600)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                if "cannot listen on" in self.log():
                    raise PortTaken(self.log())
                raise RuntimeError(f"switchyard exited ({self.proc.returncode}):\n{self.log()}")
            try:
                status, _ = _http("GET", f"{self.base}/healthz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"switchyard /healthz not up after {STEP_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)
        # Every account must be routable before a test starts.
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            status, raw = _http("GET", f"{self.base}/v1/models", headers={"authorization": f"Bearer {CLIENT_KEY}"})
            ids = {m["id"] for m in json.loads(raw).get("data", [])} if status == 200 else set()
            if {CLAUDE_MODEL, CODEX_MODEL, GEMINI_MODEL} <= ids:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"switchyard lists models {sorted(ids)} ({status}):\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        _stop(self.proc)


class Stack:
    """A mock upstream and a gateway in front of it, and where their files live."""

    def __init__(self, extra_yaml: str = ""):
        self.workdir = Path(tempfile.mkdtemp(prefix="switchyard-sdk-"))
        self.mock = None
        self.gateway = None
        try:
            self.mock = Mock(self.workdir)
            self.mock.require_bearer(UPSTREAM_TOKEN)
            self.mock.require_project(GEMINI_PROJECT)
            for attempt in range(3):
                gateway_dir = self.workdir / f"gateway-{attempt}"
                gateway_dir.mkdir()
                try:
                    self.gateway = Gateway(gateway_dir, self.mock, extra_yaml)
                    break
                except PortTaken:
                    continue  # the free port was taken before switchyard bound it: another one
            else:
                raise RuntimeError("switchyard found no free port in 3 tries")
        except BaseException:
            self.close(keep=True)
            raise

    def prepare(self) -> None:
        """Back to the defaults: plain-text fixtures, full streams, the accounts' credential."""
        self.mock.reset()
        self.mock.require_bearer(UPSTREAM_TOKEN)
        self.mock.require_project(GEMINI_PROJECT)

    def close(self, keep: bool = False) -> None:
        for part in (self.gateway, self.mock):
            if part is not None:
                part.stop()
        if keep or os.environ.get("SDK_KEEP"):
            print(f"sdk suite: kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- SDK clients, all without retries -------------------------------------------------

    def openai(self, api_key: str | None = CLIENT_KEY):
        import openai

        return openai.OpenAI(base_url=f"{self.gateway.base}/v1", api_key=api_key, max_retries=0,
                             timeout=REQUEST_TIMEOUT)

    def anthropic(self, api_key: str | None = CLIENT_KEY):
        import anthropic

        return anthropic.Anthropic(base_url=self.gateway.base, api_key=api_key, max_retries=0,
                                   timeout=REQUEST_TIMEOUT)

    def genai(self, api_key: str = CLIENT_KEY, api_version: str | None = None):
        """google-genai on its default API version (`v1`) unless told otherwise. Keep the client
        referenced while using it: it closes its HTTP client when garbage-collected."""
        from google import genai
        from google.genai import types

        return genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=self.gateway.base,
                api_version=api_version,
                timeout=int(REQUEST_TIMEOUT * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def requests_since(self, mark: int) -> list[dict]:
        return self.mock.requests()[mark:]

    def mark(self) -> int:
        return len(self.mock.requests())


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    _require_binary(SWITCHYARD_BIN, "cargo build -p switchyard")
    _require_binary(MOCK_BIN, "cargo build -p switchyard-testkit --bins")


@pytest.fixture(scope="session")
def _shared_stack():
    stack = Stack()
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def stack(_shared_stack):
    """The session's gateway and mock, reset to defaults before the test."""
    _shared_stack.prepare()
    return _shared_stack


@pytest.fixture
def own_stack():
    """A gateway and mock of the test's own: for tests that leave accounts cooling down."""
    stack = Stack()
    try:
        yield stack
    finally:
        stack.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the tails of the gateway's and the mock's logs."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for name in ("stack", "own_stack"):
        stack = getattr(item, "funcargs", {}).get(name)
        if isinstance(stack, Stack) and stack.gateway is not None:
            report.sections.append(("switchyard log (tail)", stack.gateway.log()))
            report.sections.append(("switchyard-mock log", stack.mock.log()))
