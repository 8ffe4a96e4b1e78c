"""End-to-end: the official `openai` client (and raw HTTP for hostile input) against a real
`owl serve` on 127.0.0.1, started by conftest.py."""

import http.client
import json
import re
import threading
import time
import urllib.parse

import openai
import pytest

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about autumn.",
    "Name three colours.",
    "What is 7 plus 5?",
    "Say hello in German.",
    "What do bees make?",
    "Give me a word that rhymes with cat.",
    "What is the opposite of hot?",
    "Name a planet.",
    "How many legs does a spider have?",
    "What is water made of?",
    "Suggest a name for a dog.",
    "What colour is the sky?",
    "Spell the word 'owl' backwards.",
    "What is the largest ocean?",
    "Name a fruit that is yellow.",
]


def chat(client, model_id, text, **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 24)
    return client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": text}], **kw
    )


def raw(server, method, path, body=None, headers=None, auth=True):
    """A raw HTTP request; returns (status, parsed JSON or text)."""
    u = urllib.parse.urlparse(server.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = {"Content-Type": "application/json"}
    if auth:
        h["Authorization"] = f"Bearer {server.api_key}"
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    try:
        try:
            conn.request(method, path, body=body, headers=h)
        except (BrokenPipeError, ConnectionResetError):
            # The server reads and drops an unwanted body only up to 64 MiB; past that it may
            # answer (413) and close before the body is fully sent.
            pass
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode(errors="replace")


def assert_openai_error(status, body, expected):
    assert status == expected, (status, body)
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert "type" in err and "param" in err and "code" in err


def test_models_list(client, model_id):
    # The served model first, then whatever else the store holds (the suite pulls more).
    models = client.models.list()
    assert models.data[0].id == model_id
    assert all(m.object == "model" for m in models.data)
    assert len({m.id for m in models.data}) == len(models.data)


def test_chat_completion_shape_and_usage(client, model_id):
    r = chat(client, model_id, QUESTIONS[0], max_tokens=32)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == model_id
    assert isinstance(r.created, int)
    c = r.choices[0]
    assert c.index == 0 and c.message.role == "assistant"
    assert c.message.content
    assert c.finish_reason in ("stop", "length")
    u = r.usage
    assert u.prompt_tokens > 5 and 0 < u.completion_tokens <= 32
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_max_tokens_gives_length(client, model_id):
    r = chat(client, model_id, "Write a long essay about the history of Rome.", max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5
    r2 = chat(client, model_id, "Write a long essay about the history of Rome.",
              max_tokens=None, max_completion_tokens=5)
    assert r2.usage.completion_tokens == 5
    assert r2.choices[0].message.content == r.choices[0].message.content


def test_content_parts_equal_plain_content(client, model_id):
    plain = chat(client, model_id, QUESTIONS[2])
    parts = client.chat.completions.create(
        model=model_id, temperature=0, max_tokens=24,
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTIONS[2]}]}],
    )
    assert parts.choices[0].message.content == plain.choices[0].message.content


def test_system_and_multi_turn(client, model_id):
    r = client.chat.completions.create(
        model=model_id, temperature=0, max_tokens=16,
        messages=[
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of Germany?"},
        ],
    )
    assert r.choices[0].message.content
    # The second turn of a chat reuses the cached prefix of the first.
    r2 = client.chat.completions.create(
        model=model_id, temperature=0, max_tokens=16,
        messages=[
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of Germany?"},
        ],
    )
    assert r2.choices[0].message.content == r.choices[0].message.content
    details = r2.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens > 0


def test_streaming_equals_non_streaming(client, model_id):
    full = chat(client, model_id, QUESTIONS[1], max_tokens=32)
    stream = chat(client, model_id, QUESTIONS[1], max_tokens=32, stream=True,
                  stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [full.choices[0].finish_reason]
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.completion_tokens == full.usage.completion_tokens
    assert usage.usage.prompt_tokens == full.usage.prompt_tokens


def test_stream_ends_with_done(server, model_id):
    u = urllib.parse.urlparse(server.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    body = json.dumps({"model": model_id, "stream": True, "max_tokens": 4, "temperature": 0,
                       "messages": [{"role": "user", "content": "Hi"}]})
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"Content-Type": "application/json",
                          "Authorization": f"Bearer {server.api_key}"})
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type", "").startswith("text/event-stream")
    lines = [l for l in r.read().decode().split("\n") if l.strip()]
    conn.close()
    assert all(l.startswith("data: ") for l in lines)
    assert lines[-1] == "data: [DONE]"


def test_completions_string_tokens_echo_logprobs(client, model_id, server):
    r = client.completions.create(model=model_id, prompt="The capital of France is",
                                  max_tokens=8, temperature=0)
    assert r.object == "text_completion"
    text = r.choices[0].text
    assert text and r.choices[0].finish_reason in ("stop", "length")
    # The same prompt as token ids gives the same text.
    status, tok = raw(server, "POST", "/tokenize",
                      {"content": "The capital of France is", "add_special": True})
    assert status == 200
    r2 = client.completions.create(model=model_id, prompt=tok["tokens"], max_tokens=8,
                                   temperature=0)
    assert r2.choices[0].text == text
    # Echo with logprobs: prompt tokens come first, the first has no logprob.
    r3 = client.completions.create(model=model_id, prompt="The capital of France is",
                                   max_tokens=4, temperature=0, echo=True, logprobs=2)
    c = r3.choices[0]
    assert c.text.startswith("The capital of France is")
    lp = c.logprobs
    assert lp.token_logprobs[0] is None
    assert all(isinstance(x, float) and x <= 0 for x in lp.token_logprobs[1:])
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset)
    assert len(lp.tokens) == r3.usage.prompt_tokens + r3.usage.completion_tokens
    assert all(len(t) <= 2 for t in lp.top_logprobs[1:])


def test_chat_logprobs(client, model_id):
    r = chat(client, model_id, QUESTIONS[3], max_tokens=6, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6
        assert isinstance(t.bytes, list)


def test_stop_sequences(client, model_id):
    prompt = "Count from 1 to 20, separated by commas."
    free = chat(client, model_id, prompt, max_tokens=60).choices[0].message.content
    m = re.search(r"\d+", free[3:])
    assert m, free
    stop = m.group(0)
    cut = free.index(stop)
    r = chat(client, model_id, prompt, max_tokens=60, stop=[stop, "zzzz"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == free[:cut]
    r1 = chat(client, model_id, prompt, max_tokens=60, stop=stop)
    assert r1.choices[0].message.content == free[:cut]


def test_seed_determinism(client, model_id):
    a = chat(client, model_id, QUESTIONS[1], temperature=1.0, seed=1234, max_tokens=24)
    b = chat(client, model_id, QUESTIONS[1], temperature=1.0, seed=1234, max_tokens=24)
    assert a.choices[0].message.content == b.choices[0].message.content


def test_sampling_fields_are_accepted(client, model_id):
    r = chat(client, model_id, QUESTIONS[4], temperature=0.7, top_p=0.9, seed=3,
             presence_penalty=0.5, frequency_penalty=0.5, logit_bias={"42": -100},
             user="e2e", metadata={"run": "e2e"}, store=False,
             extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1})
    assert r.choices[0].message.content is not None


def test_unknown_fields_are_refused_by_name(client, model_id):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model_id, QUESTIONS[4], extra_body={"some_unknown_field": 1})
    assert "some_unknown_field" in str(e.value)


def test_tokenize_detokenize_round_trip(server):
    status, tok = raw(server, "POST", "/tokenize", {"content": "Hello, owl! 你好"})
    assert status == 200 and all(isinstance(t, int) for t in tok["tokens"])
    status, de = raw(server, "POST", "/detokenize", {"tokens": tok["tokens"]})
    assert status == 200 and de["content"] == "Hello, owl! 你好"


def test_auth_errors(server, model_id):
    bad = openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    status, body = raw(server, "GET", "/v1/models", auth=False)
    assert_openai_error(status, body, 401)


def test_client_errors(client, model_id, server):
    with pytest.raises(openai.NotFoundError):
        chat(client, "no-such-model", "hi")
    with pytest.raises(openai.BadRequestError):
        chat(client, model_id, "hi", temperature=-1)
    with pytest.raises(openai.BadRequestError):
        chat(client, model_id, "hi", n=2)
    with pytest.raises(openai.BadRequestError):
        chat(client, model_id, "hi", top_logprobs=3)  # top_logprobs needs logprobs
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model_id, "word " * 2000)
    msg = str(e.value)
    assert str(server.ctx) in msg and re.search(r"\b\d{4}\b", msg), msg
    status, body = raw(server, "GET", "/v1/nothing-here")
    assert_openai_error(status, body, 404)


HOSTILE = [
    ("invalid JSON", b"{not json", 400),
    ("wrong type for messages", {"messages": "hello"}, 400),
    ("wrong type for max_tokens", {"messages": [{"role": "user", "content": "x"}],
                                   "max_tokens": "many"}, 400),
    ("negative max_tokens", {"messages": [{"role": "user", "content": "x"}],
                             "max_tokens": -5}, 400),
    ("negative temperature", {"messages": [{"role": "user", "content": "x"}],
                              "temperature": -0.5}, 400),
    ("top_p out of range", {"messages": [{"role": "user", "content": "x"}], "top_p": 7}, 400),
    ("missing messages", {"max_tokens": 3}, 400),
    ("bad role", {"messages": [{"role": "wizard", "content": "x"}]}, 400),
    ("a thousand stop strings", {"messages": [{"role": "user", "content": "x"}],
                                 "stop": [f"s{i}" for i in range(1000)]}, 400),
    ("invalid UTF-8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', 400),
    ("ten megabytes", b'{"messages": [{"role": "user", "content": "' + b"a" * (10 << 20) + b'"}]}', 413),
    ("prompt past the context", {"messages": [{"role": "user", "content": "hello " * 3000}]}, 400),
    ("token id out of range", {"prompt": [99999999], "max_tokens": 2}, 400),
]


@pytest.mark.parametrize("name,body,expected", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_requests_get_4xx_and_server_stays_up(server, name, body, expected):
    path = "/v1/completions" if isinstance(body, dict) and "prompt" in body else "/v1/chat/completions"
    status, resp = raw(server, "POST", path, body)
    assert status == expected, (name, status, resp)
    if isinstance(resp, dict):
        assert "error" in resp
    assert server.alive()
    assert raw(server, "GET", "/health")[0] == 200


def test_huge_max_tokens_is_capped_not_fatal(client, model_id, server):
    r = chat(client, model_id, QUESTIONS[0], max_tokens=10**9)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.total_tokens <= server.ctx


def test_sixteen_concurrent_streams_equal_solo(client, model_id):
    solo = [chat(client, model_id, q, max_tokens=32).choices[0].message.content for q in QUESTIONS]
    results = [None] * len(QUESTIONS)
    errors = []

    def worker(i):
        try:
            s = chat(client, model_id, QUESTIONS[i], max_tokens=32, stream=True)
            results[i] = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    for i, (got, want) in enumerate(zip(results, solo)):
        assert got == want, f"client {i}: {got!r} != solo {want!r}"


def metric(server, name):
    status, text = raw(server, "GET", "/metrics")
    assert status == 200
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


def test_disconnect_frees_the_sequence(server, model_id):
    u = urllib.parse.urlparse(server.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    body = json.dumps({"model": model_id, "stream": True, "max_tokens": 900,
                       "messages": [{"role": "user", "content": "Tell me a very long story."}]})
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"Content-Type": "application/json",
                          "Authorization": f"Bearer {server.api_key}"})
    r = conn.getresponse()
    assert r.status == 200
    r.readline()
    r.readline()
    conn.sock.close()
    conn.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        if metric(server, "owl_running_sequences") == 0:
            break
        time.sleep(0.2)
    assert metric(server, "owl_running_sequences") == 0
    assert server.alive()


def test_metrics(server):
    status, text = raw(server, "GET", "/metrics")
    assert status == 200
    for name in ["owl_requests_total", "owl_prompt_tokens_total", "owl_generated_tokens_total",
                 "owl_queue_depth", "owl_running_sequences", "owl_kv_cache_pages_used",
                 "owl_time_to_first_token_seconds_bucket", "owl_time_per_output_token_seconds_count"]:
        assert name in text, name
    assert metric(server, "owl_generated_tokens_total") > 0


def test_speculation_drafts_and_is_counted(client, model_id, server):
    """A reply that copies its prompt is decoded speculatively (on by default, `--spec auto`):
    /metrics counts the drafted tokens and the accepted ones."""
    before = (metric(server, "owl_spec_draft_tokens_total"),
              metric(server, "owl_spec_accepted_tokens_total"))
    # A text the default model repeats word for word from its first token. (In the order
    # "The quick brown fox…" first, its reply skipped that sentence, so the first drafts
    # failed and `auto`, whose pause depends on measured step costs, sometimes stopped
    # drafting before the copying part.)
    text = ("A journey of a thousand miles begins with a single step. To be or not to be, that "
            "is the question. The quick brown fox jumps over the lazy dog.")
    r = client.chat.completions.create(
        model=model_id, temperature=0, max_tokens=60,
        messages=[{"role": "user",
                   "content": f"Repeat the following text exactly, word for word:\n\n{text}\n"}])
    assert r.choices[0].message.content
    drafted = metric(server, "owl_spec_draft_tokens_total") - before[0]
    accepted = metric(server, "owl_spec_accepted_tokens_total") - before[1]
    assert drafted > 0 and 0 < accepted <= drafted, (drafted, accepted)


def _send_all(server, body_chunks, extra_headers, path="/v1/chat/completions"):
    """Sends a whole body with plain http.client, which stops at the first write error and
    only then reads the response: a server that answers and closes while the client is still
    sending makes this raise BrokenPipeError/ConnectionResetError instead of returning.
    Returns (status, headers, parsed JSON) and checks the connection for a second request."""
    u = urllib.parse.urlparse(server.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Content-Type": "application/json",
               "Authorization": f"Bearer {server.api_key}", **extra_headers}
    try:
        conn.putrequest("POST", path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        for chunk in body_chunks:
            conn.send(chunk)
        r = conn.getresponse()
        data = r.read()
        status, hdrs = r.status, dict(r.getheaders())
        if hdrs.get("connection", "").lower() != "close":
            # The body was read to its end, so the connection is still usable.
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
    finally:
        conn.close()
    return status, hdrs, json.loads(data)


TWELVE_MB = b'{"messages": [{"role": "user", "content": "' + b"a" * (12 << 20) + b'"}]}'


def test_twelve_megabyte_body_gets_413_json_not_a_dropped_connection(server, model_id):
    # Declared length: the whole 12 MB is sent before the response is read.
    status, hdrs, body = _send_all(server, [TWELVE_MB[i:i + (1 << 20)]
                                            for i in range(0, len(TWELVE_MB), 1 << 20)],
                                   {"Content-Length": str(len(TWELVE_MB))})
    assert_openai_error(status, body, 413)
    assert "4194304" in body["error"]["message"]
    # Chunked transfer encoding, no declared length.
    chunks = [b"%x\r\n" % len(c) + c + b"\r\n"
              for c in (TWELVE_MB[i:i + (1 << 20)] for i in range(0, len(TWELVE_MB), 1 << 20))]
    status, hdrs, body = _send_all(server, chunks + [b"0\r\n\r\n"],
                                   {"Transfer-Encoding": "chunked"})
    assert_openai_error(status, body, 413)
    # Without the API key: a 401, again after the whole body.
    status, hdrs, body = _send_all(server, [TWELVE_MB], {"Content-Length": str(len(TWELVE_MB)),
                                                         "Authorization": "Bearer wrong"})
    assert_openai_error(status, body, 401)
    # The official client gets its usual exception with the JSON error.
    from openai import OpenAI
    c = OpenAI(base_url=server.base + "/v1", api_key=server.api_key, max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model=model_id,
                                  messages=[{"role": "user", "content": "a" * (12 << 20)}])
    assert e.value.status_code == 413
    assert e.value.body["message"].startswith("the request body is larger than the limit")
    assert server.alive()


def test_long_stop_and_low_top_k_are_400(client, model_id):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model_id, "hi", stop=["x" * 100_000])
    assert e.value.body["param"] == "stop"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=model_id, prompt="hi", max_tokens=2, stop="x" * 2000)
    assert e.value.body["param"] == "stop"
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model_id, "hi", extra_body={"top_k": -2})
    assert e.value.body["param"] == "top_k"
    for k in (-1, 0):
        r = chat(client, model_id, "hi", max_tokens=2, extra_body={"top_k": k})
        assert r.choices[0].finish_reason in ("stop", "length")


def test_embeddings_create(client, model_id, server):
    """`client.embeddings.create` on the default (decoder) model: mean pooling, unit vectors,
    one per input in order, `usage`; the client's default base64 transport decodes to the
    same floats as `encoding_format="float"`; token-id input equals its text's tokens."""
    texts = ["The capital of France is Paris.", "Bees make honey.", "The capital of France is Paris."]
    r = client.embeddings.create(model=model_id, input=texts)
    assert [d.index for d in r.data] == [0, 1, 2]
    vecs = [d.embedding for d in r.data]
    for v in vecs:
        assert abs(sum(x * x for x in v) ** 0.5 - 1.0) < 1e-4
    assert vecs[0] == vecs[2] and vecs[0] != vecs[1]
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens
    f = client.embeddings.create(model=model_id, input=texts[0], encoding_format="float")
    assert f.data[0].embedding == vecs[0]
    status, tok = raw(server, "POST", "/tokenize", {"content": texts[0], "add_special": True})
    assert status == 200
    ids = client.embeddings.create(model=model_id, input=tok["tokens"], encoding_format="float")
    assert ids.data[0].embedding == vecs[0]
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=model_id, input="hi", dimensions=3)
    assert e.value.body["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=model_id, input="")
