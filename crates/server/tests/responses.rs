//! In-process tests of OpenAI's Responses API (`/v1/responses`) on the tiny model: the
//! response object and its event stream, function calls, JSON output, the store behind
//! `previous_response_id`, and the refusals. What a real model answers is tested in
//! `tests/e2e`.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{app, get, post, with, Reply, ID};
use serde_json::{json, Value};

fn body(extra: Value) -> Value {
    with(
        json!({"model": ID, "input": "What is the capital of France?", "max_output_tokens": 8, "temperature": 0}),
        extra,
    )
}

fn weather_tool() -> Value {
    json!({
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            // Bounded, so a random-weight model finishes the call within max_tokens.
            "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Rome"]}},
            "required": ["city"],
            "additionalProperties": false,
        },
        "strict": true,
    })
}

fn assert_openai_error(r: &Reply, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    let e = r.json()["error"].clone();
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    e
}

/// The text of the message items of a response.
fn output_text(v: &Value) -> String {
    v["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter(|c| c["type"] == "output_text")
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_response_has_openais_shape_and_echoes_the_request() {
    let r = post(
        app(),
        "/v1/responses",
        body(json!({"instructions": "Answer briefly."})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    assert_eq!(v["object"], "response");
    assert!(v["created_at"].as_u64().is_some());
    assert_eq!(v["model"], ID);
    let status = v["status"].as_str().unwrap();
    assert!(status == "completed" || status == "incomplete", "{status}");
    if status == "incomplete" {
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    }
    let msg = &v["output"][0];
    assert_eq!(msg["type"], "message", "{v}");
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["content"][0]["type"], "output_text");
    assert_eq!(msg["content"][0]["annotations"], json!([]));
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap()
    );
    assert!(u["input_tokens_details"]["cached_tokens"].is_u64());
    assert!(u["output_tokens_details"]["reasoning_tokens"].is_u64());
    assert_eq!(v["instructions"], "Answer briefly.");
    assert_eq!(v["tool_choice"], "auto");
    assert_eq!(v["tools"], json!([]));
    assert_eq!(v["parallel_tool_calls"], true);
    assert_eq!(v["temperature"], 0.0);
    assert_eq!(v["text"]["format"]["type"], "text");
    assert_eq!(v["max_output_tokens"], 8);
    assert!(v["previous_response_id"].is_null());
}

#[tokio::test]
async fn a_stream_is_the_response_event_sequence() {
    let r = post(app(), "/v1/responses", body(json!({"stream": true}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = r.events();
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "{data}");
        assert_eq!(data["sequence_number"], i, "{data}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..2],
        ["response.created", "response.in_progress"],
        "{names:?}"
    );
    let last = names.last().unwrap();
    assert!(
        *last == "response.completed" || *last == "response.incomplete",
        "{names:?}"
    );
    let created = &events[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    let id = created["id"].clone();
    let final_resp = &events.last().unwrap().1["response"];
    assert_eq!(final_resp["id"], id);
    // The message item: added, part added, deltas, text done, part done, item done.
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, output_text(final_resp));
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("no {n}: {names:?}"))
    };
    assert!(pos("response.output_item.added") < pos("response.content_part.added"));
    assert!(pos("response.content_part.added") < pos("response.output_text.done"));
    assert!(pos("response.output_text.done") < pos("response.content_part.done"));
    assert!(pos("response.content_part.done") < pos("response.output_item.done"));
    let done = events
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap();
    assert_eq!(done.1["item"]["id"], final_resp["output"][0]["id"]);
    // A streamed response is stored like a plain one.
    let stored = get(app(), &format!("/v1/responses/{}", id.as_str().unwrap())).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(&stored.json(), final_resp);
}

#[tokio::test]
async fn a_required_function_call_is_a_function_call_item() {
    let r = post(
        app(),
        "/v1/responses",
        body(
            json!({"max_output_tokens": 64, "tools": [weather_tool()], "tool_choice": "required"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let call = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no function_call: {v}"));
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert!(call["call_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(v["tool_choice"], "required");
    assert_eq!(v["tools"][0]["name"], "get_weather");
}

#[tokio::test]
async fn a_streamed_function_call_sends_argument_deltas() {
    let r = post(
        app(),
        "/v1/responses",
        body(json!({
            "max_output_tokens": 64, "stream": true, "tools": [weather_tool()],
            "tool_choice": {"type": "function", "name": "get_weather"},
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = r.events();
    let args: String = events
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    let done = events
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap_or_else(|| panic!("no arguments.done: {events:?}"));
    assert_eq!(done.1["arguments"], args.as_str());
    let parsed: Value = serde_json::from_str(&args).unwrap();
    assert!(parsed["city"].is_string());
}

#[tokio::test]
async fn a_json_schema_format_gives_valid_json() {
    let schema = json!({
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "integer"}},
        "required": ["answer", "confidence"],
        "additionalProperties": false,
    });
    let r = post(
        app(),
        "/v1/responses",
        body(json!({
            "max_output_tokens": 96,
            "text": {"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": true}},
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["text"]["format"]["type"], "json_schema");
    if v["status"] == "completed" {
        let out: Value = serde_json::from_str(&output_text(&v)).unwrap();
        assert!(
            out["answer"].is_string() && out["confidence"].is_i64(),
            "{out}"
        );
    }
}

#[tokio::test]
async fn previous_response_id_continues_the_conversation() {
    let first = post(
        app(),
        "/v1/responses",
        body(json!({"input": "My name is Ada."})),
    )
    .await
    .json();
    let id = first["id"].as_str().unwrap();
    let second = post(
        app(),
        "/v1/responses",
        body(json!({"input": "What is my name?", "previous_response_id": id})),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    assert_eq!(second["previous_response_id"], id);
    // The continuation's prompt holds the first turn: it is longer than the question alone.
    let alone = post(
        app(),
        "/v1/responses",
        body(json!({"input": "What is my name?"})),
    )
    .await
    .json();
    assert!(
        second["usage"]["input_tokens"].as_u64().unwrap()
            > alone["usage"]["input_tokens"].as_u64().unwrap()
                + first["usage"]["output_tokens"].as_u64().unwrap()
    );
    // Stored responses come back by id; unknown ones are 404.
    let got = get(app(), &format!("/v1/responses/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), first);
    assert_openai_error(
        &get(app(), "/v1/responses/resp_nope").await,
        StatusCode::NOT_FOUND,
    );
    let e = assert_openai_error(
        &post(
            app(),
            "/v1/responses",
            body(json!({"previous_response_id": "resp_nope"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(e["param"], "previous_response_id");
    // `store: false` keeps nothing.
    let unstored = post(app(), "/v1/responses", body(json!({"store": false})))
        .await
        .json();
    let got = get(
        app(),
        &format!("/v1/responses/{}", unstored["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn function_call_outputs_are_answered() {
    let r = post(
        app(),
        "/v1/responses",
        body(json!({
            "tools": [weather_tool()],
            "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18 C"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
            ],
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn refusals_name_the_field() {
    let cases = [
        (json!({"frobnicate": true}), "frobnicate"),
        (json!({"input": null}), "input"),
        (json!({"input": []}), "input"),
        (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"tools": [weather_tool()], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "function", "name": "nope"}}),
            "tool_choice.name",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}),
            "input[0].content[0].type",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "x"}]}),
            "input[0].type",
        ),
        (
            json!({"input": [{"role": "tool", "content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"text": {"format": {"type": "yaml"}}}),
            "text.format.type",
        ),
        (
            json!({"text": {"format": {"type": "json_schema", "name": "x"}}}),
            "text.format",
        ),
        (json!({"background": true}), "background"),
        (json!({"temperature": 3}), "temperature"),
        (json!({"max_output_tokens": 0}), "max_output_tokens"),
        (json!({"reasoning": {"effort": "huge"}}), "reasoning.effort"),
    ];
    for (extra, field) in cases {
        let r = post(app(), "/v1/responses", body(extra.clone())).await;
        let e = assert_openai_error(&r, StatusCode::BAD_REQUEST);
        let named =
            e["param"].as_str() == Some(field) || e["message"].as_str().unwrap().contains(field);
        assert!(named, "{extra}: {e} should name {field}");
    }
    // Harmless fields are accepted.
    let r = post(
        app(),
        "/v1/responses",
        body(json!({"metadata": {"k": "v"}, "user": "u", "service_tier": "auto", "truncation": "disabled", "store": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"], json!({"k": "v"}));
}
