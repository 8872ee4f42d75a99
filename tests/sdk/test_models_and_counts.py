"""Model listings and token counts through each SDK, and google-genai on both API versions."""

import pytest

from conftest import CLAUDE_MODEL, CODEX_MODEL, CLIENT_KEY, GEMINI_MODEL
from pairings import UPSTREAMS, error_status


ALL_MODELS = {CLAUDE_MODEL, CODEX_MODEL, GEMINI_MODEL}


def test_openai_lists_and_retrieves_models(stack):
    import openai

    client = stack.openai()
    ids = {m.id for m in client.models.list()}
    assert ALL_MODELS <= ids
    model = client.models.retrieve(CODEX_MODEL)
    assert (model.id, model.object) == (CODEX_MODEL, "model")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_anthropic_lists_and_retrieves_models(stack):
    import anthropic

    client = stack.anthropic()
    ids = {m.id for m in client.models.list()}
    assert ALL_MODELS <= ids
    model = client.models.retrieve(CLAUDE_MODEL)
    assert (model.id, model.type) == (CLAUDE_MODEL, "model")
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


@pytest.mark.parametrize("api_version", [None, "v1beta"], ids=["default-v1", "v1beta"])
def test_genai_lists_and_gets_models(stack, api_version):
    from google.genai import errors

    client = stack.genai(api_version=api_version)
    names = {m.name for m in client.models.list()}
    assert {f"models/{m}" for m in ALL_MODELS} <= names
    model = client.models.get(model=GEMINI_MODEL)
    assert model.name == f"models/{GEMINI_MODEL}"
    assert "generateContent" in (model.supported_actions or [])
    with pytest.raises(errors.ClientError) as raised:
        client.models.get(model="no-such-model")
    assert error_status(raised.value) == 404


@pytest.mark.parametrize("up", UPSTREAMS, ids=lambda up: up.name)
def test_genai_on_v1beta_too(stack, up):
    """Older google-genai releases and other Gemini clients call /v1beta."""
    client = stack.genai(api_version="v1beta")
    mark = stack.mark()
    assert client.models.generate_content(model=up.model, contents="Hi").text
    chunks = list(client.models.generate_content_stream(model=up.model, contents="Hi"))
    assert "".join(c.text or "" for c in chunks)
    assert [r["path"] for r in stack.requests_since(mark)] == [up.generate_path, up.stream_path]


@pytest.mark.parametrize("up", UPSTREAMS, ids=lambda up: up.name)
def test_anthropic_count_tokens(stack, up):
    mark = stack.mark()
    client = stack.anthropic()
    short = client.messages.count_tokens(model=up.model, messages=[{"role": "user", "content": "Hi"}])
    long = client.messages.count_tokens(
        model=up.model, messages=[{"role": "user", "content": "Hi " * 400}]
    )
    assert 0 < short.input_tokens < long.input_tokens
    paths = [r["path"] for r in stack.requests_since(mark)]
    # Claude counts upstream; the other dialects have no such endpoint and are estimated locally.
    assert paths == (["/v1/messages/count_tokens"] * 2 if up.name == "claude" else [])


@pytest.mark.parametrize("up", UPSTREAMS, ids=lambda up: up.name)
def test_genai_count_tokens(stack, up):
    client = stack.genai()
    mark = stack.mark()
    short = client.models.count_tokens(model=up.model, contents="Hi")
    long = client.models.count_tokens(model=up.model, contents="Hi " * 400)
    assert 0 < short.total_tokens < long.total_tokens
    paths = [r["path"] for r in stack.requests_since(mark)]
    assert paths == (["/v1internal:countTokens"] * 2 if up.name == "gemini-cli" else [])


def test_genai_wrong_key_on_a_model_listing(stack):
    from google.genai import errors

    wrong, right = stack.genai(api_key="wrong-key"), stack.genai(api_key=CLIENT_KEY)
    with pytest.raises(errors.ClientError) as raised:
        list(wrong.models.list())
    assert error_status(raised.value) == 401
    assert list(right.models.list())
