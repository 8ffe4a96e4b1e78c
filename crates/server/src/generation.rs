//! Running one request on the engine and keeping score: [`Tracked`] wraps the engine's
//! `RequestStream`, records time-to-first-token, time-per-output-token and token counts, and
//! (through [`RequestLog`]) tells the per-request log line how many tokens went in and out.
//!
//! Dropping a `Tracked` drops the `RequestStream`, which cancels the request in the engine:
//! a client that disconnects (its handler future or SSE body is dropped) frees its sequence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use owl_engine::{Event, Finish, FinishReason, Request, RequestStream, TokenLogprob};

use crate::error::ApiError;
use crate::pool::Lease;
use crate::state::AppState;

/// Token counts of one HTTP request, shared between the handler (or its SSE stream) and the
/// logging middleware.
#[derive(Clone, Default, Debug)]
pub struct RequestLog(Arc<LogCounts>);

#[derive(Default, Debug)]
struct LogCounts {
    prompt: AtomicU64,
    generated: AtomicU64,
    used: std::sync::atomic::AtomicBool,
}

impl RequestLog {
    /// `(prompt, generated)` tokens, or `None` if no generation ran.
    pub fn tokens(&self) -> Option<(u64, u64)> {
        let c = &self.0;
        c.used.load(Ordering::Relaxed).then(|| {
            (
                c.prompt.load(Ordering::Relaxed),
                c.generated.load(Ordering::Relaxed),
            )
        })
    }
}

/// A submitted request with its bookkeeping.
pub struct Tracked {
    stream: RequestStream,
    /// Keeps the model loaded until the request ends.
    _lease: Lease,
    state: AppState,
    log: RequestLog,
    submitted: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    generated: usize,
}

impl Tracked {
    /// Submits `req`; refusals (queue full, prompt too long, …) become API errors.
    pub fn submit(
        state: &AppState,
        model: &Lease,
        req: Request,
        log: Option<RequestLog>,
    ) -> Result<Tracked, ApiError> {
        let prompt = req.prompt.len() as u64;
        let mut req = req;
        if req.adapter.is_none() {
            req.adapter = model.adapter().map(str::to_string);
        }
        let stream = model.engine.submit(req)?;
        let log = log.unwrap_or_default();
        log.0.used.store(true, Ordering::Relaxed);
        log.0.prompt.store(prompt, Ordering::Relaxed);
        state
            .metrics()
            .prompt_tokens
            .fetch_add(prompt, Ordering::Relaxed);
        Ok(Tracked {
            stream,
            _lease: model.share(),
            state: state.clone(),
            log,
            submitted: Instant::now(),
            first: None,
            last: None,
            generated: 0,
        })
    }

    /// The next engine event, counted.
    pub async fn next(&mut self) -> Option<Event> {
        let ev = self.stream.next().await;
        if let Some(Event::Token { .. }) = ev {
            let now = Instant::now();
            if self.first.is_none() {
                self.first = Some(now);
                self.state
                    .metrics()
                    .ttft
                    .observe((now - self.submitted).as_secs_f64());
            }
            self.last = Some(now);
            self.generated += 1;
            self.log.0.generated.fetch_add(1, Ordering::Relaxed);
            self.state
                .metrics()
                .generated_tokens
                .fetch_add(1, Ordering::Relaxed);
        }
        ev
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let (Some(first), Some(last)) = (self.first, self.last) {
            if self.generated >= 2 {
                let per = (last - first).as_secs_f64() / (self.generated - 1) as f64;
                self.state.metrics().tpot.observe(per);
            }
        }
    }
}

/// A finished non-streaming generation.
pub struct Collected {
    pub text: String,
    /// Generated tokens with their logprobs (if asked for).
    pub tokens: Vec<(u32, Option<TokenLogprob>)>,
    pub finish: Finish,
}

/// Reads events to the end.
pub async fn collect(t: &mut Tracked) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut tokens = Vec::new();
    loop {
        match t.next().await {
            Some(Event::Token {
                id,
                text: s,
                logprob,
            }) => {
                text.push_str(&s);
                tokens.push((id, logprob));
            }
            Some(Event::Done(finish)) => {
                finish_error(&finish.reason)?;
                text.push_str(&finish.text);
                return Ok(Collected {
                    text,
                    tokens,
                    finish,
                });
            }
            None => {
                return Err(ApiError::server(
                    "the engine stopped before the request finished",
                ))
            }
        }
    }
}

/// The OpenAI `finish_reason` for a normal end, or the error for an abnormal one.
pub fn finish_error(reason: &FinishReason) -> Result<&'static str, ApiError> {
    match reason {
        FinishReason::Stop => Ok("stop"),
        FinishReason::Length => Ok("length"),
        FinishReason::Cancelled => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            "the request was cancelled: the server is shutting down",
        )),
        FinishReason::Error(m) => Err(ApiError::server(format!("generation failed: {m}"))),
    }
}
