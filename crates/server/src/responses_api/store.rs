//! Finished responses kept in memory, so `previous_response_id` can continue a conversation
//! and `GET /v1/responses/{id}` can return one.
//!
//! The store is bounded ([`CAPACITY`] responses); when full, the least recently used one
//! (stored or read longest ago) goes. Nothing is written to disk: a restart forgets all, as
//! the documentation says. Each entry keeps the conversation as chat messages (what the
//! next turn renders) beside the response object (what `GET` returns), so continuing never
//! re-parses JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use owl_text::ChatMessage;
use serde_json::Value;

/// Responses kept at most.
pub const CAPACITY: usize = 1000;

/// One stored response.
#[derive(Debug)]
pub struct Stored {
    /// The response object as it was returned.
    pub response: Value,
    /// The conversation through this response's output, without `instructions` (which a
    /// continuation does not inherit).
    pub history: Vec<ChatMessage>,
    /// Function names by call id, for tool results that answer the calls in `history`.
    pub names: HashMap<String, String>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (u64, Arc<Stored>)>,
    clock: u64,
}

/// The store (one per server, in [`crate::state::AppState`]).
pub struct ResponseStore {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl Default for ResponseStore {
    fn default() -> Self {
        ResponseStore::new(CAPACITY)
    }
}

impl ResponseStore {
    pub fn new(capacity: usize) -> ResponseStore {
        ResponseStore {
            entries: Mutex::new(Entries::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The response `id`, marked as recently used.
    pub fn get(&self, id: &str) -> Option<Arc<Stored>> {
        let mut e = self.lock();
        e.clock += 1;
        let now = e.clock;
        let (used, stored) = e.map.get_mut(id)?;
        *used = now;
        Some(Arc::clone(stored))
    }

    /// Keeps `stored` as `id`, evicting the least recently used response when full.
    pub fn put(&self, id: String, stored: Stored) {
        let mut e = self.lock();
        e.clock += 1;
        let now = e.clock;
        if !e.map.contains_key(&id) && e.map.len() >= self.capacity {
            // A linear scan: at a thousand entries it costs less than one token.
            if let Some(oldest) = e
                .map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
            {
                e.map.remove(&oldest);
            }
        }
        e.map.insert(id, (now, Arc::new(stored)));
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64) -> Stored {
        Stored {
            response: Value::from(n),
            history: Vec::new(),
            names: HashMap::new(),
        }
    }

    #[test]
    fn the_least_recently_used_response_goes_first() {
        let s = ResponseStore::new(2);
        s.put("a".into(), entry(1));
        s.put("b".into(), entry(2));
        assert!(s.get("a").is_some());
        s.put("c".into(), entry(3));
        assert_eq!(s.len(), 2);
        assert!(s.get("b").is_none(), "b was used longest ago");
        assert_eq!(s.get("a").map(|e| e.response.clone()), Some(Value::from(1)));
        assert!(s.get("c").is_some());
    }
}
