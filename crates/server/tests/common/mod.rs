//! Helpers shared by the in-process route tests of the Messages and Responses APIs: one
//! tiny model per test binary (`tests/fixtures/arch/tiny-llama.gguf`), requests through
//! `tower::ServiceExt::oneshot`, and named-event SSE parsing.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use owl_server::{AppState, HttpConfig, ModelOptions};
use serde_json::Value;
use tower::ServiceExt;

pub const ID: &str = "tiny-llama";

pub fn config(api_key: Option<&str>) -> HttpConfig {
    HttpConfig {
        model_id: ID.to_string(),
        created: 1_700_000_000,
        api_key: api_key.map(str::to_string),
        cors_origins: Vec::new(),
    }
}

fn load() -> owl_server::LoadedModel {
    owl_server::load(&ModelOptions {
        path: owl_testkit::tiny_model("llama"),
        threads: 2,
        ctx_size: None,
        parallel: 4,
        queue: 64,
        kv_tokens: None,
        quantize: None,
        spec: Default::default(),
        draft_model: None,
    })
    .expect("load the tiny model")
}

/// One loaded state per test binary, with or without an API key.
pub fn state(api_key: Option<&'static str>) -> AppState {
    static OPEN: OnceLock<AppState> = OnceLock::new();
    static KEYED: OnceLock<AppState> = OnceLock::new();
    let cell = if api_key.is_some() { &KEYED } else { &OPEN };
    cell.get_or_init(|| AppState::ready(config(api_key), load()))
        .clone()
}

pub fn app() -> Router {
    owl_server::router(state(None))
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `(event, data)` pairs of a named-event SSE body, in order.
    pub fn events(&self) -> Vec<(String, Value)> {
        let body = self.text();
        assert!(
            body.ends_with("\n\n"),
            "SSE body must end with a blank line: {body:?}"
        );
        body.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (ev, data) = f
                    .split_once('\n')
                    .unwrap_or_else(|| panic!("frame without data: {f:?}"));
                let ev = ev
                    .strip_prefix("event: ")
                    .unwrap_or_else(|| panic!("frame without event: {f:?}"));
                let data = data
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("frame without data: {f:?}"));
                (ev.to_string(), serde_json::from_str(data).unwrap())
            })
            .collect()
    }
}

pub async fn send(app: Router, req: Request<Body>) -> Reply {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn post(app: Router, path: &str, body: Value) -> Reply {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

pub async fn get(app: Router, path: &str) -> Reply {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

/// `base` with the fields of `extra` set (a `null` removes the field).
pub fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}
