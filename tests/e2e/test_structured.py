"""End-to-end: structured output and tool calls through the official `openai` client on the
default model. Every reply is constrained by a grammar, so it must parse and validate whatever
the model would have preferred to say; streamed replies must assemble to the same result."""

import json

import jsonschema
import pytest

SCHEMAS = {
    "enum": {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}},
        "required": ["sentiment"],
        "additionalProperties": False,
    },
    "nested": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "address": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 20},
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                },
                "required": ["city", "zip"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "age", "address"],
        "additionalProperties": False,
    },
    "bounded_array": {
        "type": "object",
        "properties": {
            "fruits": {
                "type": "array",
                "items": {"type": "string", "maxLength": 12},
                "minItems": 2,
                "maxItems": 4,
            }
        },
        "required": ["fruits"],
        "additionalProperties": False,
    },
    "any_of": {
        "type": "object",
        "properties": {"answer": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 10}]}},
        "required": ["answer"],
        "additionalProperties": False,
    },
    "ref_defs": {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "minimum": -100, "maximum": 100},
                    "y": {"type": "integer", "minimum": -100, "maximum": 100},
                },
                "required": ["x", "y"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}},
        "required": ["start", "end"],
        "additionalProperties": False,
    },
    "pattern": {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"}},
        "required": ["code"],
        "additionalProperties": False,
    },
    "const": {
        "type": "object",
        "properties": {"version": {"const": 2}, "kind": {"const": "report"}, "ok": {"type": "boolean"}},
        "required": ["version", "kind", "ok"],
        "additionalProperties": False,
    },
    "numeric_bounds": {
        "type": "object",
        "properties": {
            "celsius": {"type": "number", "minimum": -50, "maximum": 60},
            "humidity": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        "required": ["celsius", "humidity"],
        "additionalProperties": False,
    },
    "nullable": {
        "type": "object",
        "properties": {"nickname": {"type": ["string", "null"], "maxLength": 15}},
        "required": ["nickname"],
        "additionalProperties": False,
    },
    "one_of": {
        "type": "object",
        "properties": {
            "shape": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "circle"}, "radius": {"type": "integer", "minimum": 1, "maximum": 99}},
                        "required": ["kind", "radius"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "square"}, "side": {"type": "integer", "minimum": 1, "maximum": 99}},
                        "required": ["kind", "side"],
                        "additionalProperties": False,
                    },
                ]
            }
        },
        "required": ["shape"],
        "additionalProperties": False,
    },
    "enum_array": {
        "type": "object",
        "properties": {
            "done": {"type": "boolean"},
            "tags": {"type": "array", "items": {"enum": ["home", "work", "urgent"]}, "maxItems": 3},
        },
        "required": ["done", "tags"],
        "additionalProperties": False,
    },
    "matrix": {
        "type": "object",
        "properties": {
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "integer", "minimum": 0, "maximum": 9}},
            }
        },
        "required": ["rows"],
        "additionalProperties": False,
    },
}

PROMPT = "Answer with a JSON object for this request: describe a typical example of {}."


def ask(client, model_id, name, stream):
    kw = dict(
        model=model_id,
        messages=[{"role": "user", "content": PROMPT.format(name.replace("_", " "))}],
        temperature=0,
        max_tokens=160,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True},
        },
    )
    if not stream:
        r = client.chat.completions.create(**kw)
        return r.choices[0].message.content, r.choices[0].finish_reason
    text, finish = "", None
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    return text, finish


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_replies_validate_plain_and_streamed(client, model_id, name):
    plain, finish = ask(client, model_id, name, stream=False)
    assert finish == "stop", plain
    jsonschema.validate(json.loads(plain), SCHEMAS[name])
    streamed, finish = ask(client, model_id, name, stream=True)
    assert finish == "stop"
    assert streamed == plain


def test_json_object_mode(client, model_id):
    r = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "Give me a JSON object with your name."}],
        temperature=0,
        max_tokens=80,
        response_format={"type": "json_object"},
    )
    text = r.choices[0].message.content
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert text.startswith("{")


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 30},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 30}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}
QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_forced_tool_calls_validate_and_stream_the_same(client, model_id, choice):
    kw = dict(model=model_id, messages=QUESTION, tools=[WEATHER, TIME], tool_choice=choice,
              temperature=0, max_tokens=120)
    r = client.chat.completions.create(**kw)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    assert c.message.tool_calls, c
    call = c.message.tool_calls[0]
    assert call.type == "function" and call.id
    if isinstance(choice, dict):
        assert call.function.name == "get_weather"
    schema = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]["function"]["parameters"]
    jsonschema.validate(json.loads(call.function.arguments), schema)
    assert not (c.message.content or "").strip().startswith("{"), "no markup leaks into content"
    # Streamed: id and name first, then arguments in pieces, assembling to the same call.
    calls = {}
    finish = None
    for chunk in client.chat.completions.create(stream=True, **kw):
        for ch in chunk.choices:
            finish = ch.finish_reason or finish
            for d in ch.delta.tool_calls or []:
                slot = calls.setdefault(d.index, {"id": None, "name": None, "args": ""})
                if d.id:
                    assert slot["id"] is None, "id comes once, first"
                    slot["id"] = d.id
                if d.function and d.function.name:
                    slot["name"] = d.function.name
                if d.function and d.function.arguments:
                    assert slot["name"], "the name precedes the arguments"
                    slot["args"] += d.function.arguments
    assert finish == "tool_calls"
    assert calls[0]["name"] == call.function.name
    assert json.loads(calls[0]["args"]) == json.loads(call.function.arguments)


def test_a_turn_carrying_a_tool_result_is_answered(client, model_id):
    messages = QUESTION + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 18, "sky": "sunny"}'},
    ]
    r = client.chat.completions.create(model=model_id, messages=messages, tools=[WEATHER],
                                       tool_choice="none", temperature=0, max_tokens=40)
    c = r.choices[0]
    assert c.finish_reason in ("stop", "length")
    assert c.message.content and c.message.content.strip()
    assert not c.message.tool_calls


def test_tool_errors_are_400(client, model_id):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model_id, messages=QUESTION, tools=[WEATHER],
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert "nope" in str(e.value)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=model_id, messages=QUESTION,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}})
