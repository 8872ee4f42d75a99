"""`GET /metrics` of the real binary, read with the official Prometheus client library's parser
(`prometheus_client.parser.text_string_to_metric_families`): the text parses, and real SDK calls
(whole, streamed, refused by the upstream) move the series they should by what the fixtures say."""

from __future__ import annotations

import anthropic as anthropic_sdk
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import CLAUDE_MODEL, CODEX_MODEL, MANAGEMENT_KEY, _http
from pairings import CLAUDE, CODEX, expected_usage, replay_text


def _scrape(stack) -> dict:
    status, raw = _http(
        "GET", f"{stack.gateway.base}/metrics", headers={"authorization": f"Bearer {MANAGEMENT_KEY}"}
    )
    assert status == 200, raw
    families = {family.name: family for family in text_string_to_metric_families(raw.decode())}
    assert families, raw
    return families


def _value(families: dict, family: str, sample: str, **labels) -> float:
    """The sample's value (0 when it is not there yet: a counter not counted so far)."""
    found = [
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, (family, sample, labels, found)
    return found[0] if found else 0.0


def _requests(families, provider, model, status_class) -> float:
    return _value(
        families,
        "switchyard_requests",
        "switchyard_requests_total",
        provider=provider,
        model=model,
        status_class=status_class,
    )


def _tokens(families, provider, kind) -> float:
    return _value(families, "switchyard_tokens", "switchyard_tokens_total", provider=provider, kind=kind)


def test_families_have_their_types(stack):
    families = _scrape(stack)
    expected = {
        "switchyard_requests": "counter",
        "switchyard_request_duration_seconds": "histogram",
        "switchyard_time_to_first_byte_seconds": "histogram",
        "switchyard_tokens": "counter",
        "switchyard_active_streams": "gauge",
        "switchyard_token_refreshes": "counter",
        "switchyard_cooldowns_active": "gauge",
        "switchyard_accounts": "gauge",
        "switchyard_usage_records_dropped": "counter",
    }
    for name, kind in expected.items():
        assert name in families, sorted(families)
        assert families[name].type == kind, (name, families[name].type)
    # The gateway's three OAuth accounts, by health state.
    states = {s.labels["state"]: s.value for s in families["switchyard_accounts"].samples}
    assert sum(states.values()) == 3, states


def test_sdk_calls_move_the_series(own_stack):
    # Its own gateway: the 429 at the end leaves the Claude account cooling down.
    stack = own_stack
    replay_text(stack, CLAUDE)
    replay_text(stack, CODEX)
    before = _scrape(stack)

    anthropic = stack.anthropic()
    message = dict(model=CLAUDE_MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
    anthropic.messages.create(**message)
    with anthropic.messages.stream(**message) as stream:
        stream.get_final_message()
    openai = stack.openai()
    openai.responses.create(model=CODEX_MODEL, input="Hi", stream=False)
    # Longer than max-retry-interval: answered at once, no retry round.
    stack.mock.fault(429, retry_after=120)
    with pytest.raises(anthropic_sdk.RateLimitError):
        anthropic.messages.create(**message)

    after = _scrape(stack)
    delta = lambda f: f(after) - f(before)  # noqa: E731
    assert delta(lambda m: _requests(m, "claude", CLAUDE_MODEL, "2xx")) == 2
    assert delta(lambda m: _requests(m, "claude", CLAUDE_MODEL, "4xx")) == 1
    assert delta(lambda m: _requests(m, "codex", CODEX_MODEL, "2xx")) == 1

    # Token counts as the upstreams reported them: Claude's whole answer and its stream (whose
    # message_delta reports its own output count), and Codex's final response.
    claude_in, claude_out = expected_usage(stack, CLAUDE)
    stream_out = [
        c["usage"]["output_tokens"]
        for c in stack.mock.fixture_chunks(CLAUDE.text_stream)
        if c["type"] == "message_delta"
    ][-1]
    assert delta(lambda m: _tokens(m, "claude", "input")) == 2 * claude_in
    assert delta(lambda m: _tokens(m, "claude", "output")) == claude_out + stream_out
    codex_in, codex_out = expected_usage(stack, CODEX)
    assert delta(lambda m: _tokens(m, "codex", "input")) == codex_in
    assert delta(lambda m: _tokens(m, "codex", "output")) == codex_out

    # Histograms: cumulative buckets up to +Inf, which equals the count.
    for family in ("switchyard_request_duration_seconds", "switchyard_time_to_first_byte_seconds"):
        buckets = [
            s for s in after[family].samples if s.name == f"{family}_bucket" and s.labels["provider"] == "claude"
        ]
        counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
        assert counts == sorted(counts), counts
        assert buckets and float(max(buckets, key=lambda s: float(s.labels["le"])).labels["le"]) == float("inf")
        count = _value(after, family, f"{family}_count", provider="claude")
        assert counts[-1] == count
        assert count - _value(before, family, f"{family}_count", provider="claude") == 3

    assert _value(after, "switchyard_active_streams", "switchyard_active_streams") == 0
    assert _value(after, "switchyard_cooldowns_active", "switchyard_cooldowns_active") >= 1
    states = {s.labels["state"]: s.value for s in after["switchyard_accounts"].samples}
    assert states["active"] == 2 and states["error"] + states["cooling"] == 1, states


def test_metrics_need_the_management_key(stack):
    status, _ = _http("GET", f"{stack.gateway.base}/metrics")
    assert status == 401
    status, _ = _http("GET", f"{stack.gateway.base}/metrics", headers={"authorization": "Bearer not-the-key"})
    assert status == 401
