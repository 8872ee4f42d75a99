"""Every management call the official CPA panel (CPAMC v1.22.2) makes, against the real binary.

The calls and the response fields the panel reads are listed in
`/work/shared/specs/cpa-panel-calls.md` (numbered 1-56); each test names the numbers it covers.
One gateway per module (`panel`), started with `logging-to-file` and `request-log` on, and with
the Kimi / xAI device-login endpoints pointed at the mock (which serves neither, so those two
logins answer a clear error). "Delete all auth files" gets a gateway of its own.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import (
    CLAUDE_MODEL,
    CLIENT_KEY,
    CODEX_MODEL,
    GEMINI_MODEL,
    MANAGEMENT_KEY,
    UPSTREAM_TOKEN,
    Gateway,
    Mock,
    PortTaken,
    Stack,
)

CLAUDE_FILE = "claude-a@example.com.json"
CODEX_FILE = "codex-sdk@example.com-plus.json"
GEMINI_FILE = "gemini-g@example.com-sdk-project-1.json"
BOUNDARY = "panelcallsboundary7MA4YWxkTrZu0gW"


def _start(extra_yaml: str = "") -> Stack:
    """A Stack like conftest's, with kimi/xai logins aimed at the mock's device-login servers."""
    stack = Stack.__new__(Stack)
    stack.workdir = Path(tempfile.mkdtemp(prefix="switchyard-panel-"))
    stack.mock = None
    stack.gateway = None
    try:
        stack.mock = Mock(stack.workdir)
        stack.mock.require_bearer(UPSTREAM_TOKEN)
        stack.mock.require_project("sdk-project-1")
        stack.mock.upstream_urls_yaml += stack.mock.login_urls_yaml
        for attempt in range(3):
            gateway_dir = stack.workdir / f"gateway-{attempt}"
            gateway_dir.mkdir()
            try:
                stack.gateway = Gateway(gateway_dir, stack.mock, extra_yaml)
                break
            except PortTaken:
                continue
        else:
            raise RuntimeError("switchyard found no free port in 3 tries")
    except BaseException:
        stack.close(keep=True)
        raise
    return stack


@pytest.fixture(scope="module")
def panel():
    stack = _start("logging-to-file: true\nrequest-log: true\n")
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def stack(panel):
    """Named `stack` so a failing test's report carries the gateway's log (conftest hook)."""
    panel.prepare()
    return panel


class Answer:
    def __init__(self, status: int, headers, raw: bytes):
        self.status = status
        self.headers = headers
        self.raw = raw

    def json(self):
        return json.loads(self.raw)

    def __repr__(self):
        return f"<{self.status} {self.raw[:400]!r}>"


def call(stack, method: str, path: str, body=None, *, raw: bytes | None = None, content_type=None,
         key: str | None = MANAGEMENT_KEY, headers=None, timeout=15.0) -> Answer:
    base = stack.gateway.base
    url = base + path if path.startswith("/v1") else f"{base}/v0/management{path}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", content_type or "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def ok(answer: Answer, status: int = 200):
    assert answer.status == status, answer
    return answer.json()


def clear_error(answer: Answer, status: int, *words: str) -> str:
    assert answer.status == status, answer
    body = answer.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    for word in words:
        assert word.lower() in json.dumps(body).lower(), (word, body)
    return body["error"]


def multipart(files, fields=None) -> bytes:
    out = b""
    for name, value in (fields or {}).items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, content in files:
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                "Content-Type: application/json\r\n\r\n").encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def auth_files(stack) -> dict[str, dict]:
    body = ok(call(stack, "GET", "/auth-files"))
    assert isinstance(body["files"], list)
    return {f["name"]: f for f in body["files"]}


def chat(stack, model: str, key: str = CLIENT_KEY) -> Answer:
    return call(stack, "POST", "/v1/messages", {"model": model, "max_tokens": 16,
                                                 "messages": [{"role": "user", "content": "hi"}]},
                key=None, headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


# --- Config / connection (1-6) ---------------------------------------------------------------


class TestConfigConnection:
    def test_headers_every_answer_reads(self, stack):
        # A panel on another loopback port: CORS headers go to allowed origins only.
        panel = "http://127.0.0.1:5173"
        answer = call(stack, "GET", "/config", headers={"Origin": panel})
        assert answer.status == 200
        assert answer.headers.get("access-control-allow-origin") == panel
        assert answer.headers.get("x-cpa-version")
        assert answer.headers.get("x-cpa-build-date")
        assert answer.headers.get("x-cpa-support-plugin") == "false"
        exposed = {h.strip().lower() for h in answer.headers.get("access-control-expose-headers", "").split(",")}
        assert {"x-cpa-version", "x-cpa-build-date", "x-cpa-support-plugin"} <= exposed
        assert call(stack, "GET", "/config", key="wrong-key").status == 401

    def test_get_config_fields(self, stack):  # 1
        config = ok(call(stack, "GET", "/config"))
        assert config["debug"] is False
        assert isinstance(config["proxy-url"], str)
        assert isinstance(config["request-retry"], int)
        for flag in ("switch-project", "switch-preview-model", "antigravity-credits"):
            assert isinstance(config["quota-exceeded"][flag], bool)
        assert config["logging-to-file"] is True
        assert isinstance(config["request-log"], bool)
        assert isinstance(config["logs-max-total-size-mb"], int)
        assert isinstance(config["ws-auth"], bool)
        assert isinstance(config["force-model-prefix"], bool)
        assert config["routing"]["strategy"] == "round-robin"
        assert config["api-keys"] == [CLIENT_KEY]
        for section in ("gemini-api-key", "interactions-api-key", "codex-api-key", "xai-api-key",
                        "claude-api-key", "vertex-api-key", "openai-compatibility"):
            assert isinstance(config.get(section, []), list), section
        assert isinstance(config.get("oauth-excluded-models", {}), dict)

    def test_config_key_entry_fields(self, stack):  # 1 (key entries), 39 (PUT codex-api-key)
        entry = {"api-key": "cx-entry", "base-url": stack.mock.base + "/backend-api/codex", "priority": 4,
                 "prefix": "cxp", "headers": {"X-T": "1"}, "excluded-models": ["gpt-4*"],
                 "models": [{"name": CODEX_MODEL, "alias": "cx-alias"}]}
        ok(call(stack, "PUT", "/codex-api-key", [entry]))
        try:
            [got] = ok(call(stack, "GET", "/config"))["codex-api-key"]
            assert got["api-key"] == "cx-entry"
            assert got["priority"] == 4
            assert got["prefix"] == "cxp"
            assert got["base-url"] == entry["base-url"]
            assert got["headers"] == {"X-T": "1"}
            assert got["excluded-models"] == ["gpt-4*"]
            assert got["models"][0]["name"] == CODEX_MODEL and got["models"][0]["alias"] == "cx-alias"
            assert "proxy-url" in got and "weight" in got
        finally:
            ok(call(stack, "PUT", "/codex-api-key", []))

    def test_config_key_entries_carry_auth_index(self, stack):  # 1 (auth-index)
        ok(call(stack, "PUT", "/codex-api-key", [{"api-key": "cx-index", "base-url": "http://127.0.0.1:9"}]))
        ok(call(stack, "PUT", "/openai-compatibility", [{"name": "oc-index", "base-url": "http://127.0.0.1:9/v1",
                                                         "api-key-entries": [{"api-key": "oi-1"}]}]))
        try:
            config = ok(call(stack, "GET", "/config"))
            section = ok(call(stack, "GET", "/codex-api-key"))["codex-api-key"][0]["auth-index"]
            assert config["codex-api-key"][0]["auth-index"] == section
            compat = config["openai-compatibility"][0]
            assert compat["auth-index"] and compat["api-key-entries"][0]["auth-index"]
        finally:
            call(stack, "PUT", "/codex-api-key", [])
            call(stack, "PUT", "/openai-compatibility", [])

    def test_config_yaml_get_put(self, stack):  # 2, 3
        accept = {"Accept": "application/yaml, text/yaml, text/plain"}
        answer = call(stack, "GET", "/config.yaml", headers=accept)
        assert answer.status == 200
        text = answer.raw.decode()
        assert f"port: {stack.gateway.port}" in text
        assert CLIENT_KEY in text
        edited = text.replace(f'  - "{CLIENT_KEY}"\n', f'  - "{CLIENT_KEY}"\n  - "panel-yaml-key"\n', 1)
        assert edited != text, text
        try:
            answer = call(stack, "PUT", "/config.yaml", raw=edited.encode(), content_type="application/yaml")
            assert 200 <= answer.status < 300, answer
            again = call(stack, "GET", "/config.yaml", headers=accept).raw.decode()
            assert "panel-yaml-key" in again
            assert "panel-yaml-key" in ok(call(stack, "GET", "/api-keys"))["api-keys"]
        finally:
            call(stack, "PUT", "/config.yaml", raw=text.encode(), content_type="application/yaml")
        assert ok(call(stack, "GET", "/api-keys"))["api-keys"] == [CLIENT_KEY]

    def test_put_request_log(self, stack):  # 4
        try:
            ok(call(stack, "PUT", "/request-log", {"value": False}))
            assert ok(call(stack, "GET", "/config"))["request-log"] is False
            ok(call(stack, "PUT", "/request-log", {"value": True}))
            assert ok(call(stack, "GET", "/config"))["request-log"] is True
        finally:
            call(stack, "PUT", "/request-log", {"value": True})

    def test_api_keys(self, stack):  # 5
        assert ok(call(stack, "GET", "/api-keys"))["api-keys"] == [CLIENT_KEY]

    def test_latest_version_without_feed(self, stack):  # 6
        clear_error(call(stack, "GET", "/latest-version"), 502, "release feed")


# --- Auth files (7-22) -----------------------------------------------------------------------


class TestAuthFiles:
    def test_list_fields(self, stack):  # 7
        files = auth_files(stack)
        assert {CLAUDE_FILE, CODEX_FILE, GEMINI_FILE} <= set(files)
        claude = files[CLAUDE_FILE]
        assert claude["type"] == "claude" and claude["provider"] == "claude"
        assert claude["email"] == "a@example.com"
        assert files[GEMINI_FILE]["project_id"] == "sdk-project-1"
        for entry in files.values():
            assert isinstance(entry["size"], int) and entry["size"] > 0
            assert isinstance(entry["auth_index"], str) and entry["auth_index"]
            assert entry["runtime_only"] is False
            assert entry["source"] == "file"
            assert entry["path"].endswith(entry["name"])
            assert isinstance(entry["disabled"], bool)
            assert isinstance(entry["unavailable"], bool)
            assert isinstance(entry["status"], str)
            assert isinstance(entry["status_message"], str)
            assert any(entry.get(k) for k in ("modtime", "updated_at", "last_refresh"))
            assert isinstance(entry["success"], int) and isinstance(entry["failed"], int)
            recent = entry["recent_requests"]
            assert isinstance(recent, list) and len(recent) >= 20
            assert {"time", "success", "failed"} <= set(recent[-1])
            assert entry["account_type"] == "oauth"
            assert entry["account"] == entry["email"]

    def test_patch_status(self, stack):  # 8
        try:
            body = ok(call(stack, "PATCH", "/auth-files/status", {"name": GEMINI_FILE, "disabled": True}))
            assert body["status"] == "ok" and body["disabled"] is True
            assert auth_files(stack)[GEMINI_FILE]["disabled"] is True
            body = ok(call(stack, "PATCH", "/auth-files/status", {"name": GEMINI_FILE, "disabled": False}))
            assert body["disabled"] is False
            assert auth_files(stack)[GEMINI_FILE]["disabled"] is False
        finally:
            call(stack, "PATCH", "/auth-files/status", {"name": GEMINI_FILE, "disabled": False})

    def test_patch_fields(self, stack):  # 9, 13
        name = self._upload(stack, "claude-fields@example.com.json")
        try:
            fields = {"name": name, "prefix": "pp", "proxy_url": "http://127.0.0.1:9", "headers": {"X-A": "b"},
                      "priority": 5, "weight": 3, "disable_cooling": True, "note": "panel note",
                      "excluded_models": ["claude-opus*"]}
            assert 200 <= call(stack, "PATCH", "/auth-files/fields", fields).status < 300
            entry = auth_files(stack)[name]
            for k, v in fields.items():
                assert entry[k] == v, (k, entry)
            saved = json.loads(call(stack, "GET", f"/auth-files/download?name={name}").raw)
            assert saved["note"] == "panel note" and saved["priority"] == 5
            # "Refresh OAuth credential": expired one minute ago.
            past = "2020-01-01T00:00:00Z"
            assert 200 <= call(stack, "PATCH", "/auth-files/fields", {"name": name, "expired": past}).status < 300
            saved = json.loads(call(stack, "GET", f"/auth-files/download?name={name}").raw)
            assert saved["expired"].startswith("2020-01-01")
        finally:
            call(stack, "DELETE", "/auth-files", {"names": [name]})

    @staticmethod
    def _upload(stack, name: str) -> str:
        content = json.dumps({"type": "claude", "email": name.split("-", 1)[1][:-5], "access_token": "x",
                              "refresh_token": "y", "expired": "2099-01-01T00:00:00Z"}).encode()
        body = ok(call(stack, "POST", "/auth-files", raw=multipart([(name, content)]), content_type=MULTIPART))
        assert body["status"] == "ok"
        return name

    def test_upload_download_delete(self, stack):  # 10, 11, 13
        name = self._upload(stack, "claude-up@example.com.json")
        assert auth_files(stack)[name]["email"] == "up@example.com"
        download = call(stack, "GET", f"/auth-files/download?name={name}")
        assert download.status == 200 and json.loads(download.raw)["email"] == "up@example.com"
        # Several files, one bad: partial answer naming each.
        good = json.dumps({"type": "claude", "email": "u2@example.com", "access_token": "x"}).encode()
        answer = call(stack, "POST", "/auth-files", raw=multipart([("claude-u2@example.com.json", good),
                                                                   ("bad.json", b"not json")]),
                      content_type=MULTIPART)
        body = answer.json()
        assert answer.status in (200, 207), answer
        assert body["status"] == "partial" and body["uploaded"] == 1
        assert body["files"] == ["claude-u2@example.com.json"]
        assert body["failed"][0]["name"] == "bad.json" and body["failed"][0]["error"]
        answer = call(stack, "DELETE", "/auth-files", {"names": [name, "claude-u2@example.com.json", "none.json"]})
        body = answer.json()
        assert answer.status in (200, 207), answer
        assert body["deleted"] == 2
        assert sorted(body["files"]) == sorted([name, "claude-u2@example.com.json"])
        assert body["failed"][0]["name"] == "none.json"
        files = auth_files(stack)
        assert name not in files and "claude-u2@example.com.json" not in files
        assert CLAUDE_FILE in files

    def test_delete_all(self):  # 12
        own = _start()
        try:
            assert len(auth_files(own)) == 3
            answer = call(own, "DELETE", "/auth-files?all=true")
            assert 200 <= answer.status < 300, answer
            assert auth_files(own) == {}
            assert not list(own.gateway.auth_dir.glob("*.json"))
        finally:
            own.close()

    def test_auth_file_models(self, stack):  # 14
        models = ok(call(stack, "GET", f"/auth-files/models?name={CLAUDE_FILE}"))["models"]
        assert CLAUDE_MODEL in {m["id"] for m in models}
        for m in models:
            assert m["display_name"] and m["type"] == "claude" and m["owned_by"] == "anthropic"

    def test_model_definitions(self, stack):  # 15
        models = ok(call(stack, "GET", "/model-definitions/claude"))["models"]
        assert CLAUDE_MODEL in {m["id"] for m in models}
        codex = ok(call(stack, "GET", "/model-definitions/codex"))["models"]
        assert CODEX_MODEL in {m["id"] for m in codex}

    def test_oauth_excluded_models(self, stack):  # 16, 17, 18, 19
        try:
            ok(call(stack, "PUT", "/oauth-excluded-models", {"codex": ["gpt-4*"], "gemini-cli": ["x-*"]}))
            got = ok(call(stack, "GET", "/oauth-excluded-models"))["oauth-excluded-models"]
            assert got == {"codex": ["gpt-4*"], "gemini-cli": ["x-*"]}
            ok(call(stack, "PATCH", "/oauth-excluded-models", {"provider": "claude", "models": ["claude-opus*"]}))
            got = ok(call(stack, "GET", "/oauth-excluded-models"))["oauth-excluded-models"]
            assert got["claude"] == ["claude-opus*"] and got["codex"] == ["gpt-4*"]
            ok(call(stack, "DELETE", "/oauth-excluded-models?provider=codex"))
            got = ok(call(stack, "GET", "/oauth-excluded-models"))["oauth-excluded-models"]
            assert got == {"claude": ["claude-opus*"], "gemini-cli": ["x-*"]}
        finally:
            call(stack, "PUT", "/oauth-excluded-models", {})
        assert ok(call(stack, "GET", "/oauth-excluded-models"))["oauth-excluded-models"] == {}

    def test_oauth_model_alias(self, stack):  # 20, 21, 22
        try:
            alias = {"name": CLAUDE_MODEL, "alias": "panel-sonnet", "fork": True}
            ok(call(stack, "PATCH", "/oauth-model-alias", {"channel": "claude", "aliases": [alias]}))
            [got] = ok(call(stack, "GET", "/oauth-model-alias"))["oauth-model-alias"]["claude"]
            assert (got["name"], got["alias"], got["fork"]) == (CLAUDE_MODEL, "panel-sonnet", True)
            assert got["force-mapping"] is False
            ok(call(stack, "DELETE", "/oauth-model-alias?channel=claude"))
            assert "claude" not in ok(call(stack, "GET", "/oauth-model-alias"))["oauth-model-alias"]
            ok(call(stack, "PATCH", "/oauth-model-alias",
                    {"channel": "codex", "aliases": [{"name": CODEX_MODEL, "alias": "cx"}]}))
            assert "codex" in ok(call(stack, "GET", "/oauth-model-alias"))["oauth-model-alias"]
            ok(call(stack, "PATCH", "/oauth-model-alias", {"channel": "codex", "aliases": []}))  # empty = delete
            assert "codex" not in ok(call(stack, "GET", "/oauth-model-alias"))["oauth-model-alias"]
        finally:
            call(stack, "DELETE", "/oauth-model-alias?channel=claude")
            call(stack, "DELETE", "/oauth-model-alias?channel=codex")


# --- Usage / quota / tests (23-25) -----------------------------------------------------------


class TestUsage:
    def test_api_key_usage(self, stack):  # 23, 43 (PUT claude-api-key)
        key, base = "ck-usage", stack.mock.base
        ok(call(stack, "PUT", "/claude-api-key",
                [{"api-key": key, "base-url": base, "models": [{"name": CLAUDE_MODEL, "alias": "panel-usage"}]}]))
        try:
            stack.mock.require_bearer(key)  # claude-api-key on a custom base URL: Bearer
            answer = chat(stack, "panel-usage")
            assert answer.status == 200, answer
            usage = ok(call(stack, "GET", "/api-key-usage"))
            entry = usage["claude"][f"{base}|{key}"]
            assert entry["success"] == 1 and entry["failed"] == 0
            assert isinstance(entry["recent_requests"], list)
            assert sum(b["success"] for b in entry["recent_requests"]) == 1
        finally:
            stack.mock.require_bearer(UPSTREAM_TOKEN)
            ok(call(stack, "PUT", "/claude-api-key", []))
        assert "claude" not in ok(call(stack, "GET", "/api-key-usage"))

    def test_api_call_with_token_placeholder(self, stack):  # 24
        index = auth_files(stack)[CLAUDE_FILE]["auth_index"]
        mark = stack.mark()
        body = ok(call(stack, "POST", "/api-call", {
            "authIndex": index, "method": "POST", "url": f"{stack.mock.base}/v1/messages",
            "header": {"Authorization": "Bearer $TOKEN$", "Content-Type": "application/json"},
            "data": json.dumps({"model": CLAUDE_MODEL, "max_tokens": 8,
                                "messages": [{"role": "user", "content": "hi"}]}),
        }))
        assert body["status_code"] == 200
        assert isinstance(body["header"], dict)
        answer = body["body"] if isinstance(body["body"], dict) else json.loads(body["body"])
        assert answer["type"] == "message"
        assert len(stack.requests_since(mark)) == 1  # the mock took the substituted token

    def test_v1_models_with_client_key(self, stack):  # 25
        answer = call(stack, "GET", "/v1/models", key=CLIENT_KEY)
        ids = {m["id"] for m in ok(answer)["data"]}
        assert {CLAUDE_MODEL, CODEX_MODEL, GEMINI_MODEL} <= ids


# --- OAuth login (26-34) ---------------------------------------------------------------------


class TestOAuthLogin:
    @pytest.mark.parametrize("provider,host", [
        ("codex", "auth.openai.com"),  # 26
        ("anthropic", "claude.ai"),  # 27
        ("antigravity", "accounts.google.com"),  # 28
    ])
    def test_auth_url_wait_cancel(self, stack, provider, host):  # 26-28, 31
        body = ok(call(stack, "GET", f"/{provider}-auth-url?is_webui=true"))
        state = body["state"]
        try:
            assert body["status"] == "ok"
            assert isinstance(state, str) and len(state) >= 16
            url = urllib.parse.urlparse(body["url"])
            assert url.scheme == "https" and url.hostname == host
            assert urllib.parse.parse_qs(url.query)["state"] == [state]
            assert ok(call(stack, "GET", f"/get-auth-status?state={state}"))["status"] == "wait"
        finally:
            cancel = ok(call(stack, "DELETE", f"/oauth-session?state={state}"))
        assert cancel["status"] == "ok"
        after = ok(call(stack, "GET", f"/get-auth-status?state={state}"))
        assert after["status"] == "error" and after["error"]

    @pytest.mark.parametrize("path", ["/xai-auth-url?is_webui=true", "/kimi-auth-url"])  # 29, 30
    def test_device_login_starts_show_url_and_state(self, stack, path):
        start = ok(call(stack, "GET", path))
        assert start["status"] == "ok", start
        assert isinstance(start["url"], str) and start["url"].startswith("http"), start
        state = start["state"]
        assert isinstance(state, str) and state, start
        try:
            status = ok(call(stack, "GET", f"/get-auth-status?state={state}"))
            assert status["status"] == "wait", status
        finally:
            cancel = ok(call(stack, "DELETE", f"/oauth-session?state={state}"))
        assert cancel["status"] == "ok"

    def test_get_auth_status_unknown_state(self, stack):  # 31
        body = ok(call(stack, "GET", "/get-auth-status?state=not-a-state"))
        assert body["status"] == "error" and isinstance(body["error"], str) and body["error"]

    def test_oauth_callback(self, stack):  # 32
        body = ok(call(stack, "GET", "/anthropic-auth-url?is_webui=true"))
        state = body["state"]
        try:
            pasted = ok(call(stack, "POST", "/oauth-callback", {
                "provider": "anthropic", "redirect_url": f"http://localhost:54545/callback?code=c0de&state={state}"}))
            assert pasted["status"] == "ok"
        finally:
            call(stack, "DELETE", f"/oauth-session?state={state}")
        unknown = call(stack, "POST", "/oauth-callback", {
            "provider": "anthropic", "redirect_url": "http://localhost:54545/callback?code=c&state=unknown"})
        assert unknown.status == 404 and unknown.json()["status"] == "error"

    def test_vertex_import(self, stack, tmp_path):  # 33
        key_path = tmp_path / "key.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key_path), "2048"], check=True, capture_output=True)
        pkcs8 = subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(key_path)],
                               check=True, capture_output=True).stdout.decode()
        account = {"type": "service_account", "project_id": "panel-vx", "private_key_id": "k1",
                   "private_key": pkcs8, "client_email": "sa@panel-vx.iam.gserviceaccount.com",
                   "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
        answer = call(stack, "POST", "/vertex/import", content_type=MULTIPART,
                      raw=multipart([("sa.json", json.dumps(account).encode())], {"location": "europe-west4"}))
        body = ok(answer)
        assert body["project_id"] == "panel-vx"
        assert body["email"] == "sa@panel-vx.iam.gserviceaccount.com"
        assert body["location"] == "europe-west4"
        name = body.get("auth-file") or body.get("auth_file")
        assert name
        name = Path(name).name
        try:
            assert auth_files(stack)[name]["type"] == "vertex"
        finally:
            call(stack, "DELETE", "/auth-files", {"names": [name]})

    def test_plugins_not_supported(self, stack):  # 34 (the panel tolerates the failure)
        clear_error(call(stack, "GET", "/plugins"), 404)


# --- AI providers (35-51) --------------------------------------------------------------------

KEY_SECTIONS = ["gemini-api-key", "interactions-api-key", "codex-api-key", "xai-api-key",
                "claude-api-key", "vertex-api-key"]


class TestProviderLists:
    @pytest.mark.parametrize("section", KEY_SECTIONS)
    def test_put_then_delete_key(self, stack, section):  # 35, 37-42 (PUT), 44-49 (DELETE)
        base = "http://127.0.0.1:9/panel"
        entries = [{"api-key": f"{section}-1", "base-url": base, "priority": 2},
                   {"api-key": f"{section}-2", "base-url": base}]
        try:
            ok(call(stack, "PUT", f"/{section}", entries))
            listed = ok(call(stack, "GET", f"/{section}"))[section]
            assert [e["api-key"] for e in listed] == [f"{section}-1", f"{section}-2"]
            assert listed[0]["priority"] == 2 and listed[0]["base-url"] == base
            assert [e["api-key"] for e in ok(call(stack, "GET", "/config"))[section]] == [f"{section}-1", f"{section}-2"]
            query = urllib.parse.urlencode({"api-key": f"{section}-1", "base-url": base})
            ok(call(stack, "DELETE", f"/{section}?{query}"))
            assert [e["api-key"] for e in ok(call(stack, "GET", f"/{section}"))[section]] == [f"{section}-2"]
        finally:
            call(stack, "PUT", f"/{section}", [])
        assert ok(call(stack, "GET", f"/{section}"))[section] == []

    def test_openai_compatibility(self, stack):  # 36, 43 (PUT), 50, 51
        providers = [
            {"name": "oc-a", "base-url": "http://127.0.0.1:9/v1", "api-key-entries": [{"api-key": "oa-1"}],
             "models": [{"name": "m1", "alias": "a1"}]},
            {"name": "oc-b", "base-url": "http://127.0.0.1:9/v2", "api-key-entries": [{"api-key": "ob-1"}]},
        ]
        try:
            ok(call(stack, "PUT", "/openai-compatibility", providers))
            listed = ok(call(stack, "GET", "/openai-compatibility"))["openai-compatibility"]
            assert [p["name"] for p in listed] == ["oc-a", "oc-b"]
            first = listed[0]
            assert first["base-url"] == "http://127.0.0.1:9/v1" and first["disabled"] is False
            assert first["api-key-entries"][0]["api-key"] == "oa-1"
            assert first["api-key-entries"][0]["auth-index"]
            assert first["models"][0]["name"] == "m1" and first["models"][0]["alias"] == "a1"
            ok(call(stack, "PATCH", "/openai-compatibility", {"index": 0, "value": {"disabled": True}}))
            listed = ok(call(stack, "GET", "/openai-compatibility"))["openai-compatibility"]
            assert listed[0]["disabled"] is True and listed[1]["disabled"] is False
            ok(call(stack, "DELETE", "/openai-compatibility?index=0"))
            listed = ok(call(stack, "GET", "/openai-compatibility"))["openai-compatibility"]
            assert [p["name"] for p in listed] == ["oc-b"]
        finally:
            call(stack, "PUT", "/openai-compatibility", [])
        assert ok(call(stack, "GET", "/openai-compatibility"))["openai-compatibility"] == []


# --- Logs (52-56) ----------------------------------------------------------------------------


class TestLogs:
    def test_logs_then_clear(self, stack):  # 52, 53
        assert chat(stack, CLAUDE_MODEL).status == 200
        body = ok(call(stack, "GET", "/logs?limit=50"))
        assert isinstance(body["lines"], list) and body["lines"]
        assert all(isinstance(line, str) for line in body["lines"])
        assert isinstance(body["latest-timestamp"], int) and body["latest-timestamp"] > 0
        assert isinstance(body["next-cursor"], str) and body["next-cursor"]
        assert "cursor-reset" not in body  # only sent once the logs were cleared under a cursor
        assert 200 <= call(stack, "DELETE", "/logs").status < 300
        cursor = urllib.parse.quote(body["next-cursor"])
        after = ok(call(stack, "GET", f"/logs?limit=50&cursor={cursor}"))
        assert after["cursor-reset"] is True
        assert isinstance(after["lines"], list)

    def test_request_log_by_id(self, stack):  # 56
        answer = chat(stack, CLAUDE_MODEL)
        assert answer.status == 200
        request_id = answer.headers.get("x-request-id")
        assert request_id
        deadline = time.monotonic() + 5
        while True:
            log = call(stack, "GET", f"/request-log-by-id/{request_id}")
            if log.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert log.status == 200, log
        assert b"/v1/messages" in log.raw
        clear_error(call(stack, "GET", "/request-log-by-id/no-such-id"), 404)

    def test_request_error_logs(self, stack):  # 54, 55
        ok(call(stack, "PUT", "/request-log", {"value": False}))
        try:
            stack.mock.fault(400, body={"error": {"type": "invalid_request_error", "message": "panel fault"}})
            assert chat(stack, CLAUDE_MODEL).status >= 400
            deadline = time.monotonic() + 5
            while True:
                files = ok(call(stack, "GET", "/request-error-logs"))["files"]
                if files or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert files, "no error log written"
            for f in files:
                assert isinstance(f["name"], str) and isinstance(f["size"], int) and f["modified"]
            newest = max(files, key=lambda f: f["modified"])
            content = call(stack, "GET", f"/request-error-logs/{urllib.parse.quote(newest['name'])}")
            assert content.status == 200 and len(content.raw) == newest["size"]
            clear_error(call(stack, "GET", "/request-error-logs/no-such.log"), 404)
        finally:
            stack.mock.reset()
            call(stack, "PUT", "/request-log", {"value": True})
