//! Server-sent events for `"stream": true`: `data: {json}\n\n` frames, ending with
//! `data: [DONE]\n\n`.
//!
//! The SSE body is a stream that owns the [`Tracked`] request, so when a client disconnects and
//! hyper drops the body, the engine request is dropped (cancelled) with it; nothing else holds
//! it. A [`ChunkFormat`] supplies the endpoint's chunk shapes (chat or legacy completions);
//! the order of frames is the same for both: opening frames, content deltas (never empty; the
//! logprobs of tokens that released no text ride on the next delta), a finish chunk, an
//! optional usage chunk, `[DONE]`. A request that fails mid-stream gets an OpenAI error object
//! as its last data frame before `[DONE]`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use owl_engine::{Event, TokenLogprob};

use crate::generation::{finish_error, Tracked};
use crate::openai::Usage;

/// The chunks of one streaming endpoint, as JSON strings.
pub trait ChunkFormat: Send + 'static {
    /// Chunks before any token (chat: the role chunk; completions: echoed prompt).
    fn opening(&mut self) -> Vec<String>;
    /// A delta with `text` and the logprobs of the tokens since the previous delta.
    fn content(&mut self, text: String, tokens: Vec<(u32, TokenLogprob)>) -> String;
    /// The chunk with the finish reason.
    fn finish(&mut self, reason: &'static str) -> String;
    /// The usage chunk (`choices: []`).
    fn usage(&mut self, usage: Usage) -> String;
}

/// One SSE frame.
pub fn frame(json: &str) -> String {
    format!("data: {json}\n\n")
}

pub const DONE: &str = "data: [DONE]\n\n";

struct SseState<F> {
    tracked: Option<Tracked>,
    fmt: F,
    include_usage: bool,
    started: bool,
    pending: Vec<(u32, TokenLogprob)>,
}

impl<F: ChunkFormat> SseState<F> {
    async fn next_frames(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            let opening = self.fmt.opening();
            if !opening.is_empty() {
                let s: String = opening.iter().map(|j| frame(j)).collect();
                return Some(Bytes::from(s));
            }
        }
        loop {
            let t = self.tracked.as_mut()?;
            match t.next().await {
                Some(Event::Token { id, text, logprob }) => {
                    if let Some(lp) = logprob {
                        self.pending.push((id, lp));
                    }
                    if !text.is_empty() {
                        let pending = std::mem::take(&mut self.pending);
                        return Some(Bytes::from(frame(&self.fmt.content(text, pending))));
                    }
                }
                Some(Event::Done(f)) => {
                    let mut out = String::new();
                    if !f.text.is_empty() || !self.pending.is_empty() {
                        let pending = std::mem::take(&mut self.pending);
                        out += &frame(&self.fmt.content(f.text, pending));
                    }
                    match finish_error(&f.reason) {
                        Ok(reason) => {
                            out += &frame(&self.fmt.finish(reason));
                            if self.include_usage {
                                let u = Usage::new(
                                    f.prompt_tokens,
                                    f.completion_tokens,
                                    f.cached_tokens,
                                );
                                out += &frame(&self.fmt.usage(u));
                            }
                        }
                        Err(e) => out += &frame(&e.body()),
                    }
                    out += DONE;
                    self.tracked = None;
                    return Some(Bytes::from(out));
                }
                None => {
                    self.tracked = None;
                    let e = crate::error::ApiError::server(
                        "the engine stopped before the request finished",
                    );
                    return Some(Bytes::from(frame(&e.body()) + DONE));
                }
            }
        }
    }
}

/// The streaming response for a submitted request.
pub fn response<F: ChunkFormat>(tracked: Tracked, fmt: F, include_usage: bool) -> Response {
    let state = SseState {
        tracked: Some(tracked),
        fmt,
        include_usage,
        started: false,
        pending: Vec::new(),
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        s.next_frames()
            .await
            .map(|b| (Ok::<Bytes, Infallible>(b), s))
    });
    event_stream(stream)
}

/// A 200 `text/event-stream` response (not cached) whose body is `frames`; every streaming
/// endpoint answers with one.
pub fn event_stream(
    frames: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let mut resp = Response::new(Body::from_stream(frames));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}
