"""The matrix: each official SDK surface (client dialect) against each upstream account (upstream
dialect), what the upstream replays, and what the SDK must surface from it.

An upstream is picked by model name: every account serves its provider's catalogue. The expected
values are computed from the recorded fixtures the mock replays, never written out by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from conftest import CLAUDE_MODEL, CODEX_MODEL, GEMINI_MODEL, Stack

# The tools every tool-call request declares: the names the fixtures call, with a loose schema.
TOOL_NAMES = ("website_update", "get_weather", "weather")
TOOL_SCHEMA = {"type": "object", "properties": {}, "additionalProperties": True}
PROMPT = "Hi"


@dataclass(frozen=True)
class Upstream:
    """One upstream account and the fixtures its dialect replays."""

    name: str
    model: str
    mock_api: str  # the mock's fixture family for this dialect
    text_json: str | None  # non-stream body (None: the upstream only streams)
    text_stream: str
    tool_json: str | None
    tool_stream: str
    generate_path: str  # where a non-stream request lands on the mock
    stream_path: str
    # Events to let through before cutting a stream: some text has arrived, the end has not.
    drop_after: int
    passthrough_surface: str  # the SDK surface speaking this upstream's own dialect


CLAUDE = Upstream(
    name="claude",
    model=CLAUDE_MODEL,
    mock_api="anthropic",
    text_json="anthropic-messages/anthropic-text.json",
    text_stream="anthropic-messages/anthropic-text.chunks.txt",
    tool_json="anthropic-messages/anthropic-issue-11719-quoted-tool-input.json",
    tool_stream="anthropic-messages/anthropic-issue-11719-quoted-tool-input.chunks.txt",
    generate_path="/v1/messages",
    stream_path="/v1/messages",
    drop_after=5,  # message_start, block start, ping, "Hello", "! I"
    passthrough_surface="anthropic",
)
CODEX = Upstream(
    name="codex",
    model=CODEX_MODEL,
    mock_api="openai-responses",
    text_json=None,  # the ChatGPT backend only streams; Switchyard folds the stream
    text_stream="openai-responses/issue-20047-openai-responses.chunks.txt",
    tool_json=None,
    tool_stream="openai-responses/issue-19493-gpt-5.1-tool-call.chunks.txt",
    generate_path="/backend-api/codex/responses",
    stream_path="/backend-api/codex/responses",
    drop_after=5,  # created, in_progress, item added, part added, "OK" (no completed)
    passthrough_surface="responses",
)
GEMINI_CLI = Upstream(
    name="gemini-cli",
    model=GEMINI_MODEL,
    mock_api="gemini",
    text_json="gemini/google-text.json",
    text_stream="gemini/google-text.chunks.txt",
    tool_json="gemini/google-tool-call.json",
    tool_stream="gemini/google-tool-call.chunks.txt",
    generate_path="/v1internal:generateContent",
    stream_path="/v1internal:streamGenerateContent",
    drop_after=1,  # the first text chunk only (no finishReason)
    passthrough_surface="genai",
)
UPSTREAMS = (CLAUDE, CODEX, GEMINI_CLI)


# --- What the fixtures say ------------------------------------------------------------------


def _chunks(stack: Stack, file: str) -> list[dict]:
    return stack.mock.fixture_chunks(file)


def expected_text(stack: Stack, up: Upstream) -> str:
    """The answer text of the non-stream fixture (Codex: of the stream's final response)."""
    if up is CLAUDE:
        body = stack.mock.fixture_json(up.text_json)
        return "".join(block["text"] for block in body["content"] if block["type"] == "text")
    if up is CODEX:
        final = [c for c in _chunks(stack, up.text_stream) if c["type"] == "response.completed"][-1]
        return "".join(
            part["text"]
            for item in final["response"]["output"]
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )
    body = stack.mock.fixture_json(up.text_json)
    return "".join(p.get("text", "") for p in body["candidates"][0]["content"]["parts"] if not p.get("thought"))


def expected_usage(stack: Stack, up: Upstream) -> tuple[int, int]:
    """(input, output including reasoning) tokens of the non-stream text answer."""
    if up is CLAUDE:
        usage = stack.mock.fixture_json(up.text_json)["usage"]
        return usage["input_tokens"], usage["output_tokens"]
    if up is CODEX:
        final = [c for c in _chunks(stack, up.text_stream) if c["type"] == "response.completed"][-1]
        usage = final["response"]["usage"]
        return usage["input_tokens"], usage["output_tokens"]
    usage = stack.mock.fixture_json(up.text_json)["usageMetadata"]
    return usage["promptTokenCount"], usage["candidatesTokenCount"] + usage.get("thoughtsTokenCount", 0)


def expected_stream_text(stack: Stack, up: Upstream) -> str:
    """The concatenated text deltas of the stream fixture."""
    chunks = _chunks(stack, up.text_stream)
    if up is CLAUDE:
        return "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta" and c["delta"]["type"] == "text_delta")
    if up is CODEX:
        return "".join(c["delta"] for c in chunks if c["type"] == "response.output_text.delta")
    return "".join(
        p.get("text", "")
        for c in chunks
        for cand in c.get("candidates", [])
        for p in cand.get("content", {}).get("parts", [])
        if not p.get("thought")
    )


def expected_tool(stack: Stack, up: Upstream, stream: bool) -> tuple[str, dict]:
    """(name, arguments) of the one tool call in the fixture."""
    if up is CLAUDE:
        if not stream:
            block = next(b for b in stack.mock.fixture_json(up.tool_json)["content"] if b["type"] == "tool_use")
            return block["name"], block["input"]
        chunks = _chunks(stack, up.tool_stream)
        name = next(c["content_block"]["name"] for c in chunks if c["type"] == "content_block_start")
        args = "".join(c["delta"]["partial_json"] for c in chunks if c["type"] == "content_block_delta" and c["delta"]["type"] == "input_json_delta")
        return name, json.loads(args)
    if up is CODEX:
        chunks = _chunks(stack, up.tool_stream)
        name = next(c["item"]["name"] for c in chunks if c["type"] == "response.output_item.added")
        args = "".join(c["delta"] for c in chunks if c["type"] == "response.function_call_arguments.delta")
        return name, json.loads(args)
    if not stream:
        parts = stack.mock.fixture_json(up.tool_json)["candidates"][0]["content"]["parts"]
    else:
        parts = [p for c in _chunks(stack, up.tool_stream) for p in c["candidates"][0]["content"]["parts"]]
    call = next(p["functionCall"] for p in parts if "functionCall" in p)
    return call["name"], call["args"]


def replay_text(stack: Stack, up: Upstream) -> None:
    if up.text_json:
        stack.mock.replay(up.mock_api, up.text_json)
    stack.mock.replay(up.mock_api, up.text_stream)


def replay_tool(stack: Stack, up: Upstream) -> None:
    if up.tool_json:
        stack.mock.replay(up.mock_api, up.tool_json)
    stack.mock.replay(up.mock_api, up.tool_stream)


# --- The SDK surfaces ---------------------------------------------------------------------


@dataclass
class ToolCall:
    name: str
    arguments: dict
    # Streaming only: the arguments as the client saw them arrive, delta by delta.
    streamed_arguments: dict | None = None


@dataclass
class Result:
    text: str
    finish: Any = None  # the SDK's finish/stop reason, as it reports it
    tool_calls: list[ToolCall] = field(default_factory=list)
    # (input tokens, output tokens including reasoning), as the SDK reports them.
    usage: tuple[int, int] | None = None


class Surface:
    """One SDK entry point; each method makes one call through the gateway."""

    name: str
    finish_text: Any
    finish_tool: Any

    def __init__(self, stack: Stack):
        self.stack = stack

    def plain(self, model: str, tools: bool = False) -> Result: ...

    def stream(self, model: str, tools: bool = False) -> Result: ...

    def stream_iter(self, model: str) -> Callable[[], Any]:
        """Starts a text stream; returns an iterator of text pieces (for the cut-stream tests)."""
        ...

    def bad_request(self, model: str, upstream: Upstream) -> None:
        """A call the gateway or upstream must refuse with 400."""
        ...

    # Error types the SDK raises.
    def rate_limit_error(self): ...

    def bad_request_error(self): ...

    def auth_error(self): ...

    def stream_error(self): ...


class OpenAIChat(Surface):
    name = "openai-chat"
    finish_text = "stop"
    finish_tool = "tool_calls"

    def _tools(self):
        return [{"type": "function", "function": {"name": n, "parameters": TOOL_SCHEMA}} for n in TOOL_NAMES]

    def plain(self, model, tools=False):
        client = self.stack.openai()
        extra = {"tools": self._tools()} if tools else {}
        response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPT}], **extra)
        assert response.object == "chat.completion"
        choice = response.choices[0]
        calls = [ToolCall(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]
        usage = (response.usage.prompt_tokens, response.usage.completion_tokens) if response.usage else None
        return Result(choice.message.content or "", choice.finish_reason, calls, usage)

    def stream(self, model, tools=False):
        client = self.stack.openai()
        if not tools:
            # Raw chunks: the text is the concatenation of the content deltas.
            text, finish = "", None
            for chunk in client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": PROMPT}], stream=True
            ):
                assert chunk.object == "chat.completion.chunk"
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
            return Result(text, finish)
        # The SDK's stream helper: it accumulates the tool calls itself.
        deltas: dict[int, str] = {}
        with client.chat.completions.stream(
            model=model, messages=[{"role": "user", "content": PROMPT}], tools=self._tools()
        ) as stream:
            for event in stream:
                if event.type == "tool_calls.function.arguments.delta":
                    deltas[event.index] = deltas.get(event.index, "") + event.arguments_delta
            final = stream.get_final_completion()
        choice = final.choices[0]
        calls = [
            ToolCall(c.function.name, json.loads(c.function.arguments), json.loads(deltas[i]) if i in deltas else None)
            for i, c in enumerate(choice.message.tool_calls or [])
        ]
        return Result(choice.message.content or "", choice.finish_reason, calls)

    def stream_iter(self, model):
        stream = self.stack.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        return (choice.delta.content or "" for chunk in stream for choice in chunk.choices)

    def bad_request(self, model, upstream):
        self.stack.openai().chat.completions.create(model=model, messages="not a list")

    def rate_limit_error(self):
        import openai

        return openai.RateLimitError

    def bad_request_error(self):
        import openai

        return openai.BadRequestError

    def auth_error(self):
        import openai

        return openai.AuthenticationError

    def stream_error(self):
        import openai

        return openai.APIError

    def call_without_key(self, model):
        import openai

        client = self.stack.openai(api_key="unused")
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], extra_headers={"Authorization": openai.omit}
        )

    def call_with_key(self, model, key):
        self.stack.openai(api_key=key).chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPT}])


class OpenAIResponses(Surface):
    name = "responses"
    finish_text = "completed"
    finish_tool = "completed"

    def _tools(self):
        return [{"type": "function", "name": n, "parameters": TOOL_SCHEMA, "strict": False} for n in TOOL_NAMES]

    @staticmethod
    def _calls(response) -> list[ToolCall]:
        return [ToolCall(o.name, json.loads(o.arguments)) for o in response.output if o.type == "function_call"]

    def plain(self, model, tools=False):
        client = self.stack.openai()
        extra = {"tools": self._tools()} if tools else {}
        response = client.responses.create(model=model, input=PROMPT, **extra)
        assert response.object == "response"
        usage = (response.usage.input_tokens, response.usage.output_tokens) if response.usage else None
        return Result(response.output_text, response.status, self._calls(response), usage)

    def stream(self, model, tools=False):
        client = self.stack.openai()
        if not tools:
            text, status = "", None
            for event in client.responses.create(model=model, input=PROMPT, stream=True):
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type == "response.completed":
                    status = event.response.status
            return Result(text, status)
        deltas: dict[str, str] = {}
        with client.responses.stream(model=model, input=PROMPT, tools=self._tools()) as stream:
            for event in stream:
                if event.type == "response.function_call_arguments.delta":
                    deltas[event.item_id] = deltas.get(event.item_id, "") + event.delta
            final = stream.get_final_response()
        calls = [
            ToolCall(o.name, json.loads(o.arguments), json.loads(deltas[o.id]) if o.id in deltas else None)
            for o in final.output
            if o.type == "function_call"
        ]
        return Result(final.output_text, final.status, calls)

    def stream_iter(self, model):
        stream = self.stack.openai().responses.create(model=model, input=PROMPT, stream=True)
        return (event.delta for event in stream if event.type == "response.output_text.delta")

    def bad_request(self, model, upstream):
        self.stack.openai().responses.create(model=model, input=123)

    rate_limit_error = OpenAIChat.rate_limit_error
    bad_request_error = OpenAIChat.bad_request_error
    auth_error = OpenAIChat.auth_error
    stream_error = OpenAIChat.stream_error

    def call_without_key(self, model):
        import openai

        self.stack.openai(api_key="unused").responses.create(
            model=model, input=PROMPT, extra_headers={"Authorization": openai.omit}
        )

    def call_with_key(self, model, key):
        self.stack.openai(api_key=key).responses.create(model=model, input=PROMPT)


class AnthropicMessages(Surface):
    name = "anthropic"
    finish_text = "end_turn"
    finish_tool = "tool_use"

    def _tools(self):
        return [{"name": n, "input_schema": TOOL_SCHEMA} for n in TOOL_NAMES]

    @staticmethod
    def _result(message) -> Result:
        assert message.type == "message" and message.role == "assistant"
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [ToolCall(b.name, b.input) for b in message.content if b.type == "tool_use"]
        return Result(text, message.stop_reason, calls, (message.usage.input_tokens, message.usage.output_tokens))

    def plain(self, model, tools=False):
        extra = {"tools": self._tools()} if tools else {}
        message = self.stack.anthropic().messages.create(
            model=model, max_tokens=256, messages=[{"role": "user", "content": PROMPT}], **extra
        )
        return self._result(message)

    def stream(self, model, tools=False):
        client = self.stack.anthropic()
        if not tools:
            text, stop = "", None
            for event in client.messages.create(
                model=model, max_tokens=256, messages=[{"role": "user", "content": PROMPT}], stream=True
            ):
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text += event.delta.text
                elif event.type == "message_delta":
                    stop = event.delta.stop_reason
            return Result(text, stop)
        partial: dict[int, str] = {}
        with client.messages.stream(
            model=model, max_tokens=256, messages=[{"role": "user", "content": PROMPT}], tools=self._tools()
        ) as stream:
            for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
            final = stream.get_final_message()
        result = self._result(final)
        indexes = [i for i, b in enumerate(final.content) if b.type == "tool_use"]
        for call, index in zip(result.tool_calls, indexes):
            call.streamed_arguments = json.loads(partial[index]) if partial.get(index) else None
        return result

    def stream_iter(self, model):
        stream = self.stack.anthropic().messages.create(
            model=model, max_tokens=256, messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        return (
            event.delta.text
            for event in stream
            if event.type == "content_block_delta" and event.delta.type == "text_delta"
        )

    def bad_request(self, model, upstream):
        import anthropic

        client = self.stack.anthropic()
        if upstream is CLAUDE:
            # Passed through untouched: the upstream itself refuses a body without max_tokens.
            client.messages.create(model=model, max_tokens=anthropic.omit, messages=[{"role": "user", "content": PROMPT}])
        else:
            client.messages.create(model=model, max_tokens=256, messages="not a list")

    def rate_limit_error(self):
        import anthropic

        return anthropic.RateLimitError

    def bad_request_error(self):
        import anthropic

        return anthropic.BadRequestError

    def auth_error(self):
        import anthropic

        return anthropic.AuthenticationError

    def stream_error(self):
        import anthropic

        return anthropic.APIError

    def call_without_key(self, model):
        import anthropic

        client = anthropic.Anthropic(base_url=self.stack.gateway.base, api_key=None, auth_token=None, max_retries=0)
        client.messages.create(
            model=model, max_tokens=16, messages=[{"role": "user", "content": PROMPT}],
            extra_headers={"Authorization": anthropic.omit, "X-Api-Key": anthropic.omit},
        )

    def call_with_key(self, model, key):
        self.stack.anthropic(api_key=key).messages.create(
            model=model, max_tokens=16, messages=[{"role": "user", "content": PROMPT}]
        )


class GenAI(Surface):
    name = "genai"
    finish_text = "STOP"
    finish_tool = "STOP"

    def _config(self, tools: bool, **http):
        from google.genai import types

        config: dict = {}
        if tools:
            config["tools"] = [
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(name=n, parameters_json_schema=TOOL_SCHEMA) for n in TOOL_NAMES
                    ]
                )
            ]
            config["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
        if http:
            config["http_options"] = types.HttpOptions(**http)
        return types.GenerateContentConfig(**config) if config else None

    @staticmethod
    def _finish(response):
        reason = response.candidates[0].finish_reason if response.candidates else None
        return getattr(reason, "value", reason)

    def plain(self, model, tools=False):
        client = self.stack.genai()
        response = client.models.generate_content(model=model, contents=PROMPT, config=self._config(tools))
        calls = [ToolCall(f.name, dict(f.args or {})) for f in response.function_calls or []]
        text = "".join(p.text or "" for p in response.candidates[0].content.parts if not p.thought)
        meta = response.usage_metadata
        usage = None
        if meta is not None:
            usage = (meta.prompt_token_count, (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0))
        return Result(text, self._finish(response), calls, usage)

    def stream(self, model, tools=False):
        client = self.stack.genai()
        text, finish, calls = "", None, []
        for chunk in client.models.generate_content_stream(model=model, contents=PROMPT, config=self._config(tools)):
            for candidate in chunk.candidates or []:
                for part in (candidate.content.parts if candidate.content else None) or []:
                    if part.text and not part.thought:
                        text += part.text
                    if part.function_call:
                        args = dict(part.function_call.args or {})
                        calls.append(ToolCall(part.function_call.name, args, args))
                if candidate.finish_reason:
                    finish = getattr(candidate.finish_reason, "value", candidate.finish_reason)
        return Result(text, finish, calls)

    def stream_iter(self, model):
        client = self.stack.genai()
        stream = client.models.generate_content_stream(model=model, contents=PROMPT)

        def pieces():
            # The client must live as long as its stream (it closes its HTTP client when collected).
            _keep = client
            for chunk in stream:
                yield chunk.text or ""

        return pieces()

    def bad_request(self, model, upstream):
        # google-genai validates `contents` itself; `extra_body` sends what it would refuse.
        client = self.stack.genai()
        client.models.generate_content(
            model=model, contents=PROMPT, config=self._config(False, extra_body={"contents": "not a list"})
        )

    def rate_limit_error(self):
        from google.genai import errors

        return errors.ClientError

    def bad_request_error(self):
        from google.genai import errors

        return errors.ClientError

    def auth_error(self):
        from google.genai import errors

        return errors.ClientError

    def stream_error(self):
        from google.genai import errors

        return errors.APIError

    def call_without_key(self, model):
        from google import genai
        from google.genai import types

        # The SDK insists on a key; an empty header is what "no key" looks like on the wire.
        client = genai.Client(
            api_key="unused",
            http_options=types.HttpOptions(
                base_url=self.stack.gateway.base, headers={"x-goog-api-key": ""},
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )
        client.models.generate_content(model=model, contents=PROMPT)

    def call_with_key(self, model, key):
        client = self.stack.genai(api_key=key)
        client.models.generate_content(model=model, contents=PROMPT)


SURFACES = {cls.name: cls for cls in (OpenAIChat, OpenAIResponses, AnthropicMessages, GenAI)}

# Every client dialect against every upstream dialect: 4 x 3.
PAIRINGS = [(surface, up) for surface in SURFACES for up in UPSTREAMS]


def pairing_id(pair) -> str:
    surface, up = pair
    kind = "passthrough" if up.passthrough_surface == surface else "translated"
    return f"{surface}->{up.name}({kind})"


def error_status(error) -> int | None:
    """The HTTP status an SDK error carries (openai/anthropic: status_code; genai: code)."""
    return getattr(error, "status_code", None) or getattr(error, "code", None)


def error_text(error) -> str:
    """Everything an SDK error says, for "names the field" checks."""
    parts = [str(error)]
    for attr in ("message", "body", "details"):
        value = getattr(error, attr, None)
        if value:
            parts.append(value if isinstance(value, str) else json.dumps(value, default=str))
    return "\n".join(parts)
