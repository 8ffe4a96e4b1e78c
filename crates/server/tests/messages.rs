//! In-process tests of Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`)
//! on the tiny model: the message and stream shapes, tool use, and every refusal in
//! Anthropic's error shape. What a real model answers is tested in `tests/e2e`.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{app, post, send, state, with, Reply, ID};
use serde_json::{json, Value};

fn body(extra: Value) -> Value {
    with(
        json!({
            "model": ID,
            "max_tokens": 8,
            "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        }),
        extra,
    )
}

fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {
            "type": "object",
            // Bounded, so a random-weight model finishes the call within max_tokens.
            "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Rome"]}},
            "required": ["city"],
            "additionalProperties": false,
        },
    })
}

/// Checks Anthropic's error shape and status; returns the error's message.
fn assert_anthropic_error(r: &Reply, status: StatusCode, kind: &str) -> String {
    assert_eq!(r.status, status, "body: {}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    let m = v["error"]["message"].as_str().unwrap().to_string();
    assert!(!m.is_empty());
    m
}

#[tokio::test]
async fn a_message_has_anthropics_shape() {
    let r = post(app(), "/v1/messages", body(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], ID);
    assert_eq!(v["content"][0]["type"], "text", "{v}");
    assert!(v["content"][0]["text"].is_string());
    let stop = v["stop_reason"].as_str().unwrap();
    assert!(stop == "end_turn" || stop == "max_tokens", "{stop}");
    assert!(v["stop_sequence"].is_null());
    let u = &v["usage"];
    let input =
        u["input_tokens"].as_u64().unwrap() + u["cache_read_input_tokens"].as_u64().unwrap();
    assert!(input > 5, "{u}");
    assert!(u["output_tokens"].as_u64().unwrap() <= 8, "{u}");
}

#[tokio::test]
async fn a_system_prompt_as_string_or_blocks_renders_the_same() {
    let count = |system: Value| async move {
        let r = post(
            app(),
            "/v1/messages/count_tokens",
            json!({"model": ID, "system": system, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["input_tokens"].as_u64().unwrap()
    };
    let plain = count(json!("You are terse.")).await;
    let blocks =
        count(json!([{"type": "text", "text": "You are "}, {"type": "text", "text": "terse."}]))
            .await;
    assert_eq!(plain, blocks);
    let longer = count(json!("You are terse. You answer in French, always.")).await;
    assert!(longer > plain, "{longer} vs {plain}");
}

#[tokio::test]
async fn a_stream_is_anthropics_event_sequence() {
    let r = post(app(), "/v1/messages", body(json!({"stream": true}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = r.events();
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "{data}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert_eq!(names[names.len() - 2], "message_delta", "{names:?}");
    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    // Blocks open, take deltas and close in order, with increasing indices.
    let mut open: Option<u64> = None;
    let mut next = 0;
    let mut text = String::new();
    for (name, data) in &events[1..events.len() - 2] {
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "{names:?}");
                assert_eq!(data["index"], next);
                open = Some(next);
            }
            "content_block_delta" => {
                assert_eq!(data["index"].as_u64(), open);
                if data["delta"]["type"] == "text_delta" {
                    text += data["delta"]["text"].as_str().unwrap();
                }
            }
            "content_block_stop" => {
                assert_eq!(data["index"].as_u64(), open);
                open = None;
                next += 1;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(open.is_none());
    let delta = &events[events.len() - 2].1;
    assert!(delta["delta"]["stop_reason"].is_string(), "{delta}");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() <= 8);
    // The stream says what the plain answer says.
    let plain = post(app(), "/v1/messages", body(json!({}))).await.json();
    assert_eq!(plain["content"][0]["text"], text.as_str());
}

#[tokio::test]
async fn a_forced_tool_call_is_a_tool_use_block_with_an_object_input() {
    let r = post(
        app(),
        "/v1/messages",
        body(json!({
            "max_tokens": 64,
            "tools": [weather_tool()],
            "tool_choice": {"type": "tool", "name": "get_weather"},
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let call = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {v}"));
    assert_eq!(call["name"], "get_weather");
    assert!(call["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(call["input"]["city"].is_string(), "{v}");
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
}

#[tokio::test]
async fn a_streamed_tool_call_sends_input_json_deltas() {
    let r = post(
        app(),
        "/v1/messages",
        body(json!({
            "max_tokens": 64,
            "stream": true,
            "tools": [weather_tool()],
            "tool_choice": {"type": "any"},
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = r.events();
    let start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {events:?}"));
    let index = start.1["index"].clone();
    let json: String = events
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["index"] == index)
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    let input: Value = serde_json::from_str(&json).unwrap();
    assert!(input["city"].is_string(), "{input}");
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn a_turn_with_tool_use_and_tool_result_is_answered() {
    let r = post(
        app(),
        "/v1/messages",
        body(json!({
            "tools": [weather_tool()],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18 C"}]},
                    {"type": "text", "text": "Thanks!"},
                ]},
            ],
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
}

#[tokio::test]
async fn count_tokens_grows_with_the_conversation() {
    let count = |messages: Value| async move {
        let r = post(
            app(),
            "/v1/messages/count_tokens",
            json!({"model": ID, "messages": messages}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        v["input_tokens"].as_u64().unwrap()
    };
    let one = count(json!([{"role": "user", "content": "Hello"}])).await;
    let three = count(json!([
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]))
    .await;
    assert!(one > 0 && three > one, "{one} {three}");
    // The count is the prompt a message would use.
    let r = post(
        app(),
        "/v1/messages",
        body(json!({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 1})),
    )
    .await
    .json();
    let u = &r["usage"];
    assert_eq!(
        u["input_tokens"].as_u64().unwrap() + u["cache_read_input_tokens"].as_u64().unwrap(),
        one
    );
}

#[tokio::test]
async fn refusals_are_anthropic_errors_naming_the_field() {
    let cases = [
        (json!({"max_tokens": null}), "max_tokens"),
        (json!({"frobnicate": 1}), "frobnicate"),
        (json!({"temperature": 1.5}), "temperature"),
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
            ]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
            "messages[0].content[0].type",
        ),
        (json!({"tool_choice": {"type": "any"}}), "tool_choice"),
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "sometimes"}}),
            "tool_choice.type",
        ),
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "tool", "name": "nope"}}),
            "tool_choice.name",
        ),
        (
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            "tools[0].type",
        ),
        (json!({"tools": [{"name": "x"}]}), "tools[0].input_schema"),
        (json!({"thinking": {"type": "maybe"}}), "thinking.type"),
        (json!({"stop_sequences": "END"}), "stop_sequences"),
    ];
    for (extra, field) in cases {
        let r = post(app(), "/v1/messages", body(extra.clone())).await;
        let m = assert_anthropic_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
        assert!(m.contains(field), "{extra}: {m:?} should name {field}");
    }
    let r = post(
        app(),
        "/v1/messages",
        body(json!({"model": "claude-opus-4"})),
    )
    .await;
    assert_anthropic_error(&r, StatusCode::NOT_FOUND, "not_found_error");
    let r = send(
        app(),
        Request::post("/v1/messages")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_anthropic_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    // Harmless fields are accepted.
    let r = post(
        app(),
        "/v1/messages/count_tokens",
        json!({"model": ID, "messages": [{"role": "user", "content": "Hi"}], "metadata": {"user_id": "u"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // count_tokens has no max_tokens.
    let r = post(
        app(),
        "/v1/messages/count_tokens",
        json!({"model": ID, "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let m = assert_anthropic_error(&r, StatusCode::BAD_REQUEST, "invalid_request_error");
    assert!(m.contains("max_tokens"), "{m}");
}

#[tokio::test]
async fn the_api_key_may_come_as_x_api_key() {
    let app = owl_server::router(state(Some("sekret")));
    let req = |key: Option<(&str, &str)>| {
        let mut b = Request::post("/v1/messages/count_tokens")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some((h, v)) = key {
            b = b.header(h, v);
        }
        b.body(Body::from(
            json!({"model": ID, "messages": [{"role": "user", "content": "Hi"}]}).to_string(),
        ))
        .unwrap()
    };
    let r = send(app.clone(), req(None)).await;
    assert_anthropic_error(&r, StatusCode::UNAUTHORIZED, "authentication_error");
    let r = send(app.clone(), req(Some(("x-api-key", "wrong")))).await;
    assert_anthropic_error(&r, StatusCode::UNAUTHORIZED, "authentication_error");
    let r = send(app.clone(), req(Some(("x-api-key", "sekret")))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = send(app.clone(), req(Some(("authorization", "Bearer sekret")))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // OpenAI routes take either header too, and keep OpenAI's error shape.
    let r = send(
        app.clone(),
        Request::get("/v1/models")
            .header("x-api-key", "sekret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(app, Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"]["code"].is_string());
}
