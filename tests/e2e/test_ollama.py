"""The official `ollama` Python client against a real `owl serve` (Ollama's API on the same
port): list, show, ps, chat and generate (streamed and not, with `format` schemas), embed,
errors; and a greedy /api/chat reply equal to /v1/chat/completions for the same messages."""

import json
import math

import ollama
import pytest
from pydantic import BaseModel

GREEDY = {"temperature": 0, "repeat_penalty": 1.0}


@pytest.fixture(scope="module")
def oc(server):
    return ollama.Client(host=server.base, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=120)


def test_list_show_version(oc, model_id):
    names = [m.model for m in oc.list().models]
    assert model_id in names
    m = next(m for m in oc.list().models if m.model == model_id)
    assert m.size > 1_000_000
    assert m.details.format == "gguf"
    shown = oc.show(model_id)
    assert "completion" in shown.capabilities
    assert shown.modelinfo["general.architecture"] == "llama"
    assert "im_start" in shown.template
    with pytest.raises(ollama.ResponseError) as e:
        oc.show("no-such-model")
    assert e.value.status_code == 404


def test_chat_streamed_and_not(oc, model_id):
    msgs = [{"role": "user", "content": "Name three colours."}]
    whole = oc.chat(model=model_id, messages=msgs, options={**GREEDY, "num_predict": 24})
    assert whole.done and whole.message.role == "assistant"
    assert whole.eval_count == 24 and whole.done_reason == "length"
    assert whole.prompt_eval_count > 5 and whole.total_duration > 0
    parts = list(oc.chat(model=model_id, messages=msgs, options={**GREEDY, "num_predict": 24}, stream=True))
    assert len(parts) > 3 and parts[-1].done and not parts[0].done
    assert "".join(p.message.content for p in parts) == whole.message.content


def test_greedy_chat_equals_openai(oc, client, model_id):
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is the capital of France?"}]
    o = oc.chat(model=model_id, messages=msgs, options={**GREEDY, "num_predict": 40})
    c = client.chat.completions.create(model=model_id, messages=msgs, temperature=0, max_tokens=40)
    assert o.message.content == c.choices[0].message.content


def test_generate(oc, model_id):
    g = oc.generate(model=model_id, prompt="The capital of France is", raw=True, options={**GREEDY, "num_predict": 6})
    assert g.done and g.eval_count <= 6 and g.response
    chunks = list(oc.generate(model=model_id, prompt="Say hi.", options={**GREEDY, "num_predict": 8}, stream=True))
    assert chunks[-1].done and len(chunks) >= 2


class Pet(BaseModel):
    name: str
    age: int


def test_format_schema_and_json(oc, model_id):
    r = oc.chat(model=model_id, messages=[{"role": "user", "content": "Describe a pet as JSON."}],
                format=Pet.model_json_schema(), options={**GREEDY, "num_predict": 60})
    Pet.model_validate_json(r.message.content)
    g = oc.generate(model=model_id, prompt="A JSON object about the sea:", format="json", options={**GREEDY, "num_predict": 60})
    if g.done_reason == "stop":
        assert isinstance(json.loads(g.response), dict)


def test_ps_and_keep_alive(oc, model_id):
    oc.generate(model=model_id, prompt="", keep_alive="10m")
    ps = oc.ps().models
    m = next(m for m in ps if m.model == model_id)
    assert m.size > 1_000_000 and m.expires_at is not None


def test_embed(oc, model_id):
    e = oc.embed(model=model_id, input=["The cat sat on the mat.", "A feline rested on a rug.", "Quarterly revenue grew."])
    assert len(e.embeddings) == 3
    v = e.embeddings
    for x in v:
        assert abs(math.sqrt(sum(a * a for a in x)) - 1) < 1e-4
    cos = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert cos(v[0], v[1]) > cos(v[0], v[2])
    old = oc.embeddings(model=model_id, prompt="The cat sat on the mat.")
    assert max(abs(a - b) for a, b in zip(old.embedding, v[0])) < 1e-6


def test_errors_in_ollama_shape(oc, model_id):
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model=model_id, messages=[{"role": "user", "content": "hi", "images": ["aGVsbG8="]}])
    assert e.value.status_code == 400 and "images" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model=model_id, messages=[{"role": "user", "content": "hi"}], options={"mirostat": 2})
    assert e.value.status_code == 400 and "mirostat" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="missing-model", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 404
    bad = ollama.Client(host=oc._client.base_url.__str__().rstrip("/"), headers={"Authorization": "Bearer wrong"})
    with pytest.raises(ollama.ResponseError) as e:
        bad.list()
    assert e.value.status_code == 401


def test_tools_round_trip(oc, model_id):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    msgs = [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]
    r = oc.chat(model=model_id, messages=msgs, tools=tools, options={**GREEDY, "num_predict": 80})
    calls = r.message.tool_calls or []
    for c in calls:
        assert c.function.name == "get_weather"
        assert isinstance(c.function.arguments, dict) and isinstance(c.function.arguments.get("city"), str)
    if calls:
        # The answer to the call goes back as a `tool` message; the model then replies.
        msgs += [{"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in calls]},
                 {"role": "tool", "tool_name": "get_weather", "content": '{"temp_c": 18}'}]
    else:
        assert r.message.content
        msgs += [{"role": "assistant", "content": r.message.content},
                 {"role": "user", "content": "Thanks."}]
    r2 = oc.chat(model=model_id, messages=msgs, tools=tools, options={**GREEDY, "num_predict": 20})
    assert r2.done
    # Streamed, calls come whole in one line before the last.
    parts = list(oc.chat(model=model_id, messages=msgs[:1], tools=tools, options={**GREEDY, "num_predict": 80}, stream=True))
    streamed = [c for p in parts for c in (p.message.tool_calls or [])]
    assert [c.function.arguments for c in streamed] == [c.function.arguments for c in calls]
