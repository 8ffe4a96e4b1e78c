//! The middleware every route runs through, built by one function ([`apply`]) so tests can
//! wrap their own routes (e.g. one that panics) in exactly the production stack.
//!
//! Outermost first:
//! 1. `json_errors`: any error response that is not JSON yet (axum's 405, a plain-text
//!    rejection) is rewritten into the OpenAI error shape, keeping its status.
//! 2. `log_requests`: counts `owl_requests_total{route,status}` and prints one stderr line per
//!    request (method, path, status, prompt/generated tokens, latency). For SSE responses the
//!    line is printed when the body ends or is dropped (client gone), so it has the final
//!    token counts.
//! 3. `CatchPanicLayer`: a panicking handler becomes a 500 OpenAI error; the server goes on.
//! 4. `require_key`: with `--api-key`, everything but `/health` and the chat page (`/` and its
//!    assets, `routes::web::is_public`) needs the key, as
//!    `Authorization: Bearer` (OpenAI's clients) or `x-api-key` (Anthropic's); the 401 of a
//!    Messages route is in Anthropic's error shape.
//! 5. `DefaultBodyLimit`: bodies over [`BODY_LIMIT`] are refused (413) as they are read.
//!
//! With `--cors-origin`, a CORS layer wraps all of them, so browsers' preflight `OPTIONS`
//! requests are answered before the API key is checked.
//!
//! Outside everything, `drain_body` reads whatever of the request body the handler left unread
//! (a body refused with 413 or 401, say) and discards it, up to [`DRAIN_LIMIT`] bytes and
//! [`DRAIN_TIMEOUT_SECS`], before the response goes out. Without it hyper answers and closes
//! the connection while the client is still sending; the unread bytes make the kernel reset
//! the connection, and clients see a broken pipe or reset instead of the error. Past the limit
//! (or a declared `Content-Length` over it) the response says `Connection: close` and the
//! connection is closed.

use std::any::Any;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::{Stream, StreamExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{BODY_LIMIT, DRAIN_LIMIT, DRAIN_TIMEOUT_SECS};
use crate::error::ApiError;
use crate::generation::RequestLog;
use crate::state::AppState;

/// Wraps `router` in the production middleware stack.
pub fn apply(router: Router, state: AppState) -> Router {
    let cors = cors_layer(&state.config().cors_origins);
    let router = router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state, log_requests))
        .layer(middleware::from_fn(json_errors));
    let router = match cors {
        Some(c) => router.layer(c),
        None => router,
    };
    router.layer(middleware::from_fn(drain_body))
}

/// CORS for the configured origins (`*`: any); `None` when there are none. Origins that are
/// not valid header values are skipped (the CLI checks them first).
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static(X_API_KEY),
                header::HeaderName::from_static("anthropic-version"),
            ])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    eprintln!("owl serve: a request handler panicked: {what}");
    ApiError::server("internal error: the request handler panicked").into_response()
}

/// Compares without an early exit, so response time says nothing about the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Anthropic's clients send the key as `x-api-key`, OpenAI's as `Authorization: Bearer`.
const X_API_KEY: &str = "x-api-key";

fn key_ok(headers: &HeaderMap, key: &str) -> bool {
    let bearer = headers.get(header::AUTHORIZATION).is_some_and(|v| {
        let v = v.as_bytes();
        let token = v
            .strip_prefix(b"Bearer ")
            .or_else(|| v.strip_prefix(b"bearer "));
        token.is_some_and(|t| same(t.trim_ascii(), key.as_bytes()))
    });
    let x_key = headers
        .get(X_API_KEY)
        .is_some_and(|v| same(v.as_bytes().trim_ascii(), key.as_bytes()));
    bearer || x_key
}

async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.config().api_key {
        let path = req.uri().path();
        let open = path == "/health" || crate::routes::web::is_public(path);
        if !open && !key_ok(req.headers(), key) {
            let e = ApiError::unauthorized();
            if crate::anthropic::error::is_messages_path(req.uri().path()) {
                return crate::anthropic::error::AnthropicError(e).into_response();
            }
            if crate::ollama::error::is_ollama_path(req.uri().path()) {
                return crate::ollama::OllamaError(e).into_response();
            }
            return e.into_response();
        }
    }
    next.run(req).await
}

/// What the log line needs, printed when dropped: when the response is complete, or when the
/// client left first (then the status is logged and counted as 499, nginx's "client closed
/// request").
struct LogLine {
    state: AppState,
    route: String,
    method: String,
    path: String,
    status: Option<u16>,
    log: RequestLog,
    start: Instant,
}

/// Status logged for a request whose client disconnected before the response.
const CLIENT_CLOSED: u16 = 499;

impl Drop for LogLine {
    fn drop(&mut self) {
        let status = match self.status {
            Some(s) => s,
            None => {
                self.state
                    .metrics()
                    .count_request(&self.route, CLIENT_CLOSED);
                CLIENT_CLOSED
            }
        };
        let tokens = match self.log.tokens() {
            Some((p, g)) => format!(" prompt={p} generated={g}"),
            None => String::new(),
        };
        eprintln!(
            "owl serve: {} {} {}{} {:.3}s",
            self.method,
            self.path,
            status,
            tokens,
            self.start.elapsed().as_secs_f64()
        );
    }
}

async fn log_requests(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());
    let mut line = LogLine {
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "unmatched".to_string()),
        method: req.method().to_string(),
        path: req.uri().path().chars().take(200).collect(),
        status: None,
        log,
        start: Instant::now(),
        state,
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    line.status = Some(status);
    line.state.metrics().count_request(&line.route, status);
    let is_sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_sse {
        return resp;
    }
    // The line goes with the body: printed when the stream ends or the client leaves.
    let (parts, body) = resp.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _keep = &line;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

async fn json_errors(req: Request, next: Next) -> Response {
    let ollama = crate::ollama::error::is_ollama_path(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    if status.as_u16() < 400 {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let e = ApiError::from_status(status, &detail);
    let mut out = if ollama {
        crate::ollama::OllamaError(e).into_response()
    } else {
        e.into_response()
    };
    // Keep headers such as `Allow` on a 405.
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    *out.status_mut() = if status.is_client_error() || status.is_server_error() {
        status
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    out
}

/// The request body as the handler sees it, and how far it got; shared by [`SharedBody`] (in
/// the request) and [`drain_body`], so the unread rest outlives the handler dropping its body.
struct BodyState {
    rest: Option<BodyDataStream>,
    /// Bytes read so far.
    read: u64,
    /// Read to its end (or broken: nothing more will come).
    done: bool,
    /// Read at all (so hyper has sent `100 Continue` if the client asked for it).
    polled: bool,
}

fn lock(s: &Mutex<BodyState>) -> MutexGuard<'_, BodyState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The body handed to the handler: reads from the shared [`BodyState`].
struct SharedBody(Arc<Mutex<BodyState>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut st = lock(&self.0);
        st.polled = true;
        let Some(rest) = st.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let r = rest.poll_next_unpin(cx);
        match &r {
            Poll::Ready(Some(Ok(b))) => st.read += b.len() as u64,
            Poll::Ready(Some(Err(_)) | None) => st.done = true,
            Poll::Pending => {}
        }
        r
    }
}

/// Reads and drops `rest` up to `budget` bytes; true when it ended (or broke) within it.
async fn discard(mut rest: BodyDataStream, budget: u64) -> bool {
    let mut left = budget;
    while let Some(chunk) = rest.next().await {
        match chunk {
            Ok(b) => match left.checked_sub(b.len() as u64) {
                Some(l) => left = l,
                None => return false,
            },
            // The client is gone or sent a malformed body; the connection ends either way.
            Err(_) => return true,
        }
    }
    true
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

async fn drain_body(req: Request, next: Next) -> Response {
    let declared = declared_length(req.headers());
    let wants_continue = expects_continue(req.headers());
    let (parts, body) = req.into_parts();
    let state = Arc::new(Mutex::new(BodyState {
        rest: Some(body.into_data_stream()),
        read: 0,
        done: false,
        polled: false,
    }));
    let req = Request::from_parts(parts, Body::from_stream(SharedBody(Arc::clone(&state))));
    let mut resp = next.run(req).await;
    let (rest, read) = {
        let mut st = lock(&state);
        // A client waiting for `100 Continue` has not sent the body, and will not now.
        if st.done || (wants_continue && !st.polled) {
            return resp;
        }
        (st.rest.take(), st.read)
    };
    let Some(rest) = rest else {
        return resp;
    };
    let budget = DRAIN_LIMIT.saturating_sub(read);
    let drained = declared.is_none_or(|n| n <= DRAIN_LIMIT)
        && tokio::time::timeout(
            Duration::from_secs(DRAIN_TIMEOUT_SECS),
            discard(rest, budget),
        )
        .await
        .unwrap_or(false);
    if !drained {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
