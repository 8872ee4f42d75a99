"""Failures through every SDK x upstream pairing, as each SDK reports them: the upstream's 429 on
the only account, a bad request, a stream cut mid-way, and a missing or wrong client key."""

import pytest

from conftest import CLIENT_KEY
from pairings import (
    CLAUDE,
    CODEX,
    GEMINI_CLI,
    PAIRINGS,
    SURFACES,
    error_status,
    error_text,
    expected_stream_text,
    pairing_id,
    replay_text,
)


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_upstream_429_on_the_only_account_is_the_sdks_rate_limit_error(own_stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](own_stack)
    own_stack.mock.fault(429, retry_after=120)

    # The upstream's own 429, relayed in the client's dialect.
    with pytest.raises(surface.rate_limit_error()) as first:
        surface.plain(up.model)
    assert error_status(first.value) == 429
    assert len(own_stack.mock.requests()) == 1

    # The account now cools down: a stream request gets 429 at once, without reaching upstream.
    with pytest.raises(surface.rate_limit_error()) as second:
        surface.stream(up.model)
    assert error_status(second.value) == 429
    assert "cooling down" in error_text(second.value)
    assert len(own_stack.mock.requests()) == 1
    response = getattr(second.value, "response", None)
    if response is not None and hasattr(response, "headers"):
        assert 1 <= int(response.headers["retry-after"]) <= 120


# What a passed-through bad request looks like when the upstream refuses it (the mock does not
# validate these fields, the real services do): each API's own 400 body, naming the field.
UPSTREAM_400 = {
    CODEX.name: {"detail": "Invalid type for 'input': expected a string or an array of input items."},
    GEMINI_CLI.name: {
        "error": {
            "code": 400,
            "message": "Invalid value at 'request.contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"not a list\"",
            "status": "INVALID_ARGUMENT",
        }
    },
}
# The field each surface's bad request gets wrong.
BAD_FIELD = {"openai-chat": "messages", "responses": "input", "anthropic": "messages", "genai": "contents"}


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_bad_request_is_a_400_naming_the_field(stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    passthrough = up.passthrough_surface == surface_name
    if passthrough and up.name in UPSTREAM_400:
        stack.mock.fault(400, body=UPSTREAM_400[up.name])
    mark = stack.mark()

    with pytest.raises(surface.bad_request_error()) as raised:
        surface.bad_request(up.model, up)

    assert error_status(raised.value) == 400
    field = "max_tokens" if (passthrough and up is CLAUDE) else BAD_FIELD[surface_name]
    assert field in error_text(raised.value), error_text(raised.value)
    seen = stack.requests_since(mark)
    if passthrough:
        assert len(seen) == 1, "a passed-through request is the upstream's to judge"
    else:
        assert seen == [], "a request that does not translate never reaches the upstream"
    # A 400 is the request's fault, not the account's: the next request is served.
    assert surface.plain(up.model).text


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_mid_stream_disconnect_raises_while_iterating(stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    replay_text(stack, up)
    stack.mock.drop_after(up.drop_after)

    pieces = surface.stream_iter(up.model)  # the stream starts fine: 200 and the first events
    received = []
    with pytest.raises(surface.stream_error()) as raised:
        for piece in pieces:
            received.append(piece)
    text = "".join(received)
    full = expected_stream_text(stack, up)
    assert text and full.startswith(text), (text, full)
    assert "broke off" in error_text(raised.value)


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["missing-key", "wrong-key"])
def test_client_key_is_required(stack, pair, key):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    mark = stack.mark()

    with pytest.raises(surface.auth_error()) as raised:
        if key is None:
            surface.call_without_key(up.model)
        else:
            surface.call_with_key(up.model, key)

    assert error_status(raised.value) == 401
    assert ("Missing" if key is None else "Invalid") in error_text(raised.value)
    assert stack.requests_since(mark) == []
    # The configured key works on the same client surface.
    surface.call_with_key(up.model, CLIENT_KEY)
