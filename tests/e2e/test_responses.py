"""End-to-end: the official `openai` client's Responses API (`client.responses`) against a
real `owl serve` (conftest.py): string input, instructions, streamed deltas, JSON Schema
output, a forced function call, a function_call_output turn, and previous_response_id."""

import json

import jsonschema
import openai
import pytest

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}
QUESTION = "What is the weather like in Paris today?"


def create(client, model_id, **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_output_tokens", 32)
    return client.responses.create(model=model_id, **kw)


def test_a_string_input_is_answered(client, model_id):
    r = create(client, model_id, input="What is the capital of France?",
               instructions="You answer in one short sentence.")
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status in ("completed", "incomplete")
    assert "Paris" in r.output_text, r.output_text
    assert r.usage.input_tokens > 5 and 0 < r.usage.output_tokens <= 32
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_instructions_are_the_system_prompt(client, model_id):
    r = create(client, model_id, input="Who are you?", instructions="You are a pirate. Say arr.")
    plain = create(client, model_id, input="Who are you?")
    assert r.instructions == "You are a pirate. Say arr."
    assert r.usage.input_tokens != plain.usage.input_tokens
    assert r.output_text.strip()


def test_max_output_tokens_makes_an_incomplete_response(client, model_id):
    r = create(client, model_id, input="Write a long story about a dragon.", max_output_tokens=4)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"


def test_streamed_deltas_assemble_to_the_output_text(client, model_id):
    kw = dict(input="Name three colours.", max_output_tokens=48)
    deltas = []
    final = None
    types = []
    for event in create(client, model_id, stream=True, **kw):
        types.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type in ("response.completed", "response.incomplete"):
            final = event.response
    assert types[:2] == ["response.created", "response.in_progress"], types
    assert len(deltas) > 1
    assert final is not None and "".join(deltas) == final.output_text
    assert final.output_text == create(client, model_id, **kw).output_text, "greedy: same text"
    # The stream helper accumulates the same response.
    with client.responses.stream(model=model_id, input="Say hello.", temperature=0,
                                 max_output_tokens=200) as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        done = s.get_final_response()
    assert done.output_text == text and text.strip()


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "is_capital": {"type": "boolean"},
    },
    "required": ["city", "country", "is_capital"],
    "additionalProperties": False,
}


def test_json_schema_output_parses_and_validates(client, model_id):
    r = create(client, model_id, input="Describe Paris as JSON.", max_output_tokens=120,
               text={"format": {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}})
    assert r.status == "completed", r
    jsonschema.validate(json.loads(r.output_text), SCHEMA)
    assert r.text.format.type == "json_schema"
    # Streamed, the same text.
    with client.responses.stream(model=model_id, input="Describe Paris as JSON.", temperature=0,
                                 max_output_tokens=120,
                                 text={"format": {"type": "json_schema", "name": "city",
                                                  "schema": SCHEMA, "strict": True}}) as s:
        assert s.get_final_response().output_text == r.output_text


def test_a_required_function_call_has_valid_arguments(client, model_id):
    r = create(client, model_id, input=QUESTION, tools=[WEATHER], tool_choice="required",
               max_output_tokens=120)
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls, r.output
    call = calls[0]
    assert call.name == "get_weather" and call.call_id and call.id.startswith("fc_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    # Streamed: the same call, arguments in deltas.
    args = ""
    done = None
    for event in create(client, model_id, input=QUESTION, tools=[WEATHER], tool_choice="required",
                        max_output_tokens=120, stream=True):
        if event.type == "response.function_call_arguments.delta":
            args += event.delta
        if event.type == "response.function_call_arguments.done":
            done = event.arguments
    assert done == args and json.loads(args) == json.loads(call.arguments)


def test_a_function_call_output_turn_is_answered(client, model_id):
    first = create(client, model_id, input=QUESTION, tools=[WEATHER], tool_choice="required",
                   max_output_tokens=120)
    call = next(o for o in first.output if o.type == "function_call")
    # The client sends the output back with the earlier items, as the API's docs do.
    items = [{"role": "user", "content": QUESTION}] + [o.model_dump(exclude_none=True) for o in first.output]
    items.append({"type": "function_call_output", "call_id": call.call_id,
                  "output": json.dumps({"temperature": 18, "sky": "sunny"})})
    r = create(client, model_id, input=items, tools=[WEATHER], tool_choice="none", max_output_tokens=40)
    assert r.output_text.strip()
    assert not [o for o in r.output if o.type == "function_call"]


def test_previous_response_id_continues_the_conversation(client, model_id):
    first = create(client, model_id, input="My name is Ada. Remember it.", max_output_tokens=16)
    second = create(client, model_id, input="What is my name?", previous_response_id=first.id,
                    max_output_tokens=16)
    alone = create(client, model_id, input="What is my name?", max_output_tokens=16)
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    assert client.responses.retrieve(first.id).output_text == first.output_text
    with pytest.raises(openai.NotFoundError):
        create(client, model_id, input="Hi", previous_response_id="resp_unknown")


def test_errors_are_openai_exceptions(client, model_id):
    with pytest.raises(openai.BadRequestError) as e:
        create(client, model_id, input="Hi", tools=[{"type": "web_search"}])
    assert "tools[0].type" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        create(client, model_id, input="Hi", tool_choice="required")
    assert "tool_choice" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        create(client, model_id, input="Hi", extra_body={"frobnicate": True})
    assert "frobnicate" in str(e.value)
