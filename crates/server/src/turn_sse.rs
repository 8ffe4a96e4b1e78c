//! Server-sent events for a streamed [`TurnStream`], with named events (`event:` lines), the
//! framing Anthropic's Messages and OpenAI's Responses streams use.
//!
//! As in `sse.rs`, the body stream owns the turn: a client that disconnects drops the body,
//! which drops the [`TurnStream`] and cancels the generation. An [`EventFormat`] turns the
//! turn's events into the API's frames; this file only drives it: the opening frames, one
//! batch of frames per [`TurnEvent`], and the closing frames or, when the turn fails midway,
//! the API's error frame (the HTTP status is already 200 by then).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::response::Response;
use serde::Serialize;

use crate::error::ApiError;
use crate::turn::{Ending, Piece, TurnEvent, TurnStream, TurnUsage};

/// An API's streamed frames, as SSE text (built with [`event`]).
pub trait EventFormat: Send + 'static {
    /// Frames before anything is generated.
    fn opening(&mut self) -> String;
    /// Frames for pieces of the reply.
    fn pieces(&mut self, pieces: Vec<Piece>) -> String;
    /// The closing frames.
    fn done(&mut self, ending: Ending, usage: TurnUsage) -> String;
    /// The frame reporting a failure after the stream began.
    fn failed(&mut self, error: &ApiError) -> String;
}

/// One named SSE frame: `event: NAME`, then the JSON `data`.
pub fn event(name: &str, data: &impl Serialize) -> String {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_string());
    format!("event: {name}\ndata: {json}\n\n")
}

struct Driver<F> {
    turn: Option<TurnStream>,
    fmt: F,
    started: bool,
}

impl<F: EventFormat> Driver<F> {
    async fn next_frames(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(Bytes::from(self.fmt.opening()));
        }
        loop {
            let turn = self.turn.as_mut()?;
            let out = match turn.next().await {
                Some(Ok(TurnEvent::Pieces(pieces, _))) if pieces.is_empty() => continue,
                Some(Ok(TurnEvent::Pieces(pieces, _))) => self.fmt.pieces(pieces),
                Some(Ok(TurnEvent::Done { ending, usage })) => {
                    self.turn = None;
                    self.fmt.done(ending, usage)
                }
                Some(Err(e)) => {
                    self.turn = None;
                    self.fmt.failed(&e)
                }
                None => {
                    self.turn = None;
                    self.fmt.failed(&ApiError::server(
                        "the generation ended before the reply was complete",
                    ))
                }
            };
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }
}

/// The streaming response for a started turn.
pub fn response<F: EventFormat>(turn: TurnStream, fmt: F) -> Response {
    let driver = Driver {
        turn: Some(turn),
        fmt,
        started: false,
    };
    crate::sse::event_stream(futures_util::stream::unfold(driver, |mut d| async move {
        d.next_frames()
            .await
            .map(|b| (Ok::<Bytes, Infallible>(b), d))
    }))
}
