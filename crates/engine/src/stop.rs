//! Generated tokens to released text, with stop strings.
//!
//! Text is held back while it could still turn into a stop string (a suffix that is a prefix of
//! one), so a client never receives part of a stop string that later completes. A stop string
//! therefore always lies inside the held text when it completes, and everything before it is
//! released.

use owl_text::{StreamDecoder, Tokenizer};

pub struct StopText {
    decoder: StreamDecoder,
    held: String,
    stops: Vec<String>,
    stopped: bool,
}

/// What one token did to the text.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// Text that can be sent now (possibly empty).
    Text(String),
    /// A stop string completed; this is the text before it, and generation ends.
    Stop(String),
}

impl StopText {
    pub fn new(stops: &[String], render_special: bool) -> StopText {
        StopText {
            decoder: StreamDecoder::with_special(render_special),
            held: String::new(),
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            stopped: false,
        }
    }

    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Released {
        let piece = self.decoder.push(tok, id);
        self.push_text(&piece)
    }

    /// Adds decoded text (separate from `push` so the logic is testable without a vocabulary).
    pub fn push_text(&mut self, piece: &str) -> Released {
        self.held.push_str(piece);
        if self.stops.is_empty() {
            return Released::Text(std::mem::take(&mut self.held));
        }
        // The earliest stop string wins.
        let hit = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = hit {
            let mut before = std::mem::take(&mut self.held);
            before.truncate(at);
            self.stopped = true;
            return Released::Stop(before);
        }
        let keep = self.partial_stop_suffix();
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        Released::Text(out)
    }

    /// Length in bytes of the longest suffix of the held text that starts some stop string.
    fn partial_stop_suffix(&self) -> usize {
        let h = self.held.as_str();
        let mut best = 0;
        for s in &self.stops {
            // Suffixes of `h` shorter than `s`, longest first, on character boundaries.
            let max = (s.len() - 1).min(h.len());
            for len in (best + 1..=max).rev() {
                let start = h.len() - len;
                if h.is_char_boundary(start) && s.starts_with(&h[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }

    /// Everything still held (nothing once a stop string completed).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let tail = self.decoder.finish();
        let mut out = std::mem::take(&mut self.held);
        out.push_str(&tail);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, Option<String>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut t = StopText::new(&stops, false);
        let mut out = Vec::new();
        for p in pieces {
            match t.push_text(p) {
                Released::Text(s) => out.push(s),
                Released::Stop(s) => return (out, Some(s)),
            }
        }
        out.push(t.finish());
        (out, None)
    }

    #[test]
    fn without_stops_everything_is_released_at_once() {
        assert_eq!(run(&[], &["a", "b"]).0, vec!["a", "b", ""]);
    }

    #[test]
    fn stop_across_tokens_is_never_partly_released() {
        let (out, stop) = run(&["END"], &["hello E", "N", "D more"]);
        assert_eq!(out, vec!["hello ", ""]);
        assert_eq!(stop.as_deref(), Some(""));
    }

    #[test]
    fn false_start_is_released_later() {
        let (out, stop) = run(&["END"], &["x E", "Nx", " y"]);
        assert_eq!(out.concat(), "x ENx y");
        assert_eq!(stop, None);
        assert_eq!(out[0], "x ");
    }

    #[test]
    fn earliest_of_several_stops_wins_and_text_before_is_kept() {
        let (out, stop) = run(&["bb", "a"], &["xxbba"]);
        assert!(out.is_empty());
        assert_eq!(stop.as_deref(), Some("xx"));
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let (out, stop) = run(&["é!"], &["caf", "é", "?"]);
        assert_eq!(out.concat(), "café?");
        assert_eq!(stop, None);
        let (out, stop) = run(&["é!"], &["café", "!"]);
        assert_eq!(out.concat(), "caf");
        assert_eq!(stop.as_deref(), Some(""));
    }
}
