//! Tool-call ids: `call_` and 24 random alphanumerics, like OpenAI's.
//!
//! Ids only need to be unique within a conversation, not unpredictable, so a tiny xorshift
//! generator seeded from the clock, the process id and a counter does (no new dependency).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh `call_…` id.
pub fn new_call_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut state =
        nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut id = String::from("call_");
    for _ in 0..24 {
        let r = splitmix(&mut state);
        id.push(ALPHABET[(r % ALPHABET.len() as u64) as usize] as char);
    }
    id
}

/// One splitmix64 step (good mixing even from close seeds).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 9-character alphanumeric id derived from `id` (Mistral's templates insist on
/// exactly nine).
pub fn nine_char_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    // FNV-1a, then splitmix for the characters.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..9)
        .map(|_| ALPHABET[(splitmix(&mut h) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_openai_shaped_and_distinct() {
        let a = new_call_id();
        let b = new_call_id();
        assert_eq!(a.len(), 29);
        assert!(a.starts_with("call_") && a[5..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(nine_char_id(&a), nine_char_id(&a));
        assert_eq!(nine_char_id(&a).len(), 9);
        assert_eq!(nine_char_id("abcDEF123"), "abcDEF123");
    }
}
