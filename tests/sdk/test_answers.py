"""Answers through every SDK x upstream pairing: plain text, streamed text, tool calls (whole and
streamed). The expected values come from the fixtures the mock upstream replays."""

import pytest

from pairings import (
    PAIRINGS,
    SURFACES,
    expected_stream_text,
    expected_text,
    expected_usage,
    expected_tool,
    pairing_id,
    replay_text,
    replay_tool,
)


def _upstream_calls(stack, mark, up, stream):
    """The requests the mock saw since `mark`: exactly one, to the right account's API."""
    seen = stack.requests_since(mark)
    assert len(seen) == 1, [r["path"] for r in seen]
    request = seen[0]
    assert request["path"] == (up.stream_path if stream else up.generate_path), request["path"]
    # The account's OAuth token, never the client's key (the mock refuses anything else).
    assert request["headers"].get("authorization") == "Bearer sdk-upstream-token"
    return request


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_plain_text(stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    replay_text(stack, up)
    mark = stack.mark()

    result = surface.plain(up.model)

    assert result.text == expected_text(stack, up)
    assert result.finish == surface.finish_text
    assert result.tool_calls == []
    assert result.usage == expected_usage(stack, up)
    request = _upstream_calls(stack, mark, up, stream=False)
    if up.name == "gemini-cli":
        assert request["body"]["project"] == "sdk-project-1"
        assert request["body"]["model"] == up.model


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_streamed_text(stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    replay_text(stack, up)
    mark = stack.mark()

    result = surface.stream(up.model)

    assert result.text == expected_stream_text(stack, up)
    assert result.finish == surface.finish_text
    request = _upstream_calls(stack, mark, up, stream=True)
    if up.name == "gemini-cli":
        assert request["query"] == "alt=sse"
    else:
        assert request["body"]["stream"] is True


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_tool_call(stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    replay_tool(stack, up)
    mark = stack.mark()

    result = surface.plain(up.model, tools=True)

    name, arguments = expected_tool(stack, up, stream=False)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [(name, arguments)]
    assert result.finish == surface.finish_tool
    request = _upstream_calls(stack, mark, up, stream=False)
    # The declared tools reached the upstream, in its own dialect.
    assert name in str(request["body"])


@pytest.mark.parametrize("pair", PAIRINGS, ids=pairing_id)
def test_streamed_tool_call(stack, pair):
    surface_name, up = pair
    surface = SURFACES[surface_name](stack)
    replay_tool(stack, up)
    mark = stack.mark()

    result = surface.stream(up.model, tools=True)

    name, arguments = expected_tool(stack, up, stream=True)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [(name, arguments)]
    # The argument deltas the client received add up to the same arguments.
    assert [c.streamed_arguments for c in result.tool_calls] == [arguments]
    assert result.finish == surface.finish_tool
    _upstream_calls(stack, mark, up, stream=True)
