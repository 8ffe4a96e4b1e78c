"""End-to-end: the official `anthropic` client against a real `owl serve` (conftest.py), on
Anthropic's Messages API: plain and streamed messages, a forced tool call whose input
validates against its schema, a turn carrying a tool result, count_tokens, and errors
raised as the client's own exceptions.

The client authenticates with `x-api-key`, as it does against Anthropic. Its newest
versions no longer take `temperature` as an argument, so greedy decoding goes through
`extra_body`."""

import anthropic
import jsonschema
import pytest

GREEDY = {"temperature": 0}

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


@pytest.fixture(scope="module")
def claude(server):
    return anthropic.Anthropic(base_url=server.base, api_key=server.api_key, max_retries=0, timeout=120)


def test_messages_create(claude, model_id):
    m = claude.messages.create(
        model=model_id, max_tokens=24, extra_body=GREEDY,
        system="You answer in one short sentence.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.id.startswith("msg_")
    assert m.model == model_id
    assert m.stop_reason in ("end_turn", "max_tokens")
    text = "".join(b.text for b in m.content if b.type == "text")
    assert "Paris" in text, text
    assert m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) > 10
    assert 0 < m.usage.output_tokens <= 24


def test_messages_stream_text_equals_the_final_message(claude, model_id):
    kw = dict(model=model_id, max_tokens=32, extra_body=GREEDY,
              messages=[{"role": "user", "content": "Name three colours."}])
    with claude.messages.stream(**kw) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1, "text arrives in pieces"
    text = "".join(pieces)
    assert text.strip()
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0
    plain = claude.messages.create(**kw)
    assert plain.content[0].text == text, "greedy: streamed and plain agree"


def test_raw_stream_events_come_in_order(claude, model_id):
    events = list(claude.messages.create(
        model=model_id, max_tokens=8, extra_body=GREEDY, stream=True,
        messages=[{"role": "user", "content": "Say hi."}],
    ))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert kinds[-2] == "message_delta"
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert events[0].message.usage.input_tokens > 0


def test_a_forced_tool_call_validates_against_its_schema(claude, model_id):
    kw = dict(model=model_id, max_tokens=120, extra_body=GREEDY, messages=QUESTION,
              tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    m = claude.messages.create(**kw)
    assert m.stop_reason == "tool_use", m
    calls = [b for b in m.content if b.type == "tool_use"]
    assert calls, m.content
    assert calls[0].name == "get_weather" and calls[0].id
    jsonschema.validate(calls[0].input, WEATHER["input_schema"])
    # Streamed, the client assembles the same input from input_json_delta events.
    with claude.messages.stream(**kw) as stream:
        final = stream.get_final_message()
    streamed = [b for b in final.content if b.type == "tool_use"]
    assert streamed and streamed[0].input == calls[0].input
    assert final.stop_reason == "tool_use"


def test_a_turn_carrying_a_tool_result_is_answered(claude, model_id):
    messages = QUESTION + [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris", "unit": "celsius"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 degrees and sunny"},
        ]},
    ]
    m = claude.messages.create(model=model_id, max_tokens=40, extra_body=GREEDY, messages=messages,
                               tools=[WEATHER], tool_choice={"type": "none"})
    assert m.stop_reason in ("end_turn", "max_tokens")
    text = "".join(b.text for b in m.content if b.type == "text")
    assert text.strip()
    assert not [b for b in m.content if b.type == "tool_use"]


def test_count_tokens_is_the_prompt_size(claude, model_id):
    messages = [{"role": "user", "content": "Hello there"}]
    n = claude.messages.count_tokens(model=model_id, messages=messages).input_tokens
    m = claude.messages.create(model=model_id, max_tokens=1, extra_body=GREEDY, messages=messages)
    assert n == m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0)
    with_tools = claude.messages.count_tokens(model=model_id, messages=messages, tools=[WEATHER])
    assert with_tools.input_tokens > n, "tools are part of the prompt"


def test_errors_are_anthropic_exceptions(claude, server, model_id):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=model_id, max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "messages[0].content[0]" in e.value.message
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=model_id, max_tokens=8, messages=QUESTION,
                               extra_body={"frobnicate": 1})
    assert "frobnicate" in e.value.message
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="claude-opus-4-1", max_tokens=8, messages=QUESTION)
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.base, api_key="wrong", max_retries=0).messages.create(
            model=model_id, max_tokens=8, messages=QUESTION)
