//! Calls written between special markers, arguments raw in between: DeepSeek, Kimi K2 and
//! gpt-oss (as the harmony splitter passes them on). A region is an optional section
//! (`section_open` … `section_close`) holding calls `call_open NAME name_end ARGS args_end
//! [call_close]`; without a section a region is one call.

use super::parser::{Partial, Scan};
use super::scan::{partial_marker, ws};

/// One family's markers.
pub struct Delimited {
    pub section_open: Option<&'static str>,
    pub section_close: Option<&'static str>,
    pub call_open: &'static str,
    pub name_end: &'static str,
    pub args_end: &'static str,
    /// Closes a call after its arguments (after optional whitespace), if the family has one.
    pub call_close: Option<&'static str>,
    /// The function name from the text between `call_open` and `name_end`.
    pub name: fn(&str) -> String,
}

impl Delimited {
    /// The markers a region may start with.
    pub fn scan(&self, region: &str, eof: bool) -> Scan {
        let mut scan = Scan::default();
        let mut at = 0;
        let sectioned = match self.section_open {
            Some(open) if region.starts_with(open) => {
                at = open.len();
                true
            }
            _ => false,
        };
        loop {
            at += ws(&region[at..]);
            let rest = &region[at..];
            if let Some(after) = rest.strip_prefix(self.call_open) {
                let Some(name_len) = after.find(self.name_end) else {
                    return scan;
                };
                let name = (self.name)(&after[..name_len]);
                let args_at = at + self.call_open.len() + name_len + self.name_end.len();
                let args_text = &region[args_at..];
                let Some(args_len) = args_text.find(self.args_end) else {
                    let keep = partial_marker(args_text, &[self.args_end]);
                    let args = if eof {
                        args_text
                    } else {
                        &args_text[..args_text.len() - keep]
                    };
                    scan.calls.push(Partial {
                        name,
                        args: args.trim().to_string(),
                        done: false,
                    });
                    return scan;
                };
                scan.calls.push(Partial {
                    name,
                    args: args_text[..args_len].trim().to_string(),
                    done: true,
                });
                at = args_at + args_len + self.args_end.len();
                if let Some(close) = self.call_close {
                    let n = ws(&region[at..]);
                    let tail = &region[at + n..];
                    if tail.starts_with(close) {
                        at += n + close.len();
                    } else if close.starts_with(tail) && !eof {
                        return scan; // the close marker may still be arriving
                    }
                }
                if !sectioned {
                    scan.end = Some(at);
                    return scan;
                }
                continue;
            }
            if let Some(close) = self.section_close {
                if rest.starts_with(close) {
                    scan.end = Some(at + close.len());
                    return scan;
                }
            }
            let waiting = [Some(self.call_open), self.section_close]
                .into_iter()
                .flatten()
                .any(|m| m.starts_with(rest));
            if waiting && !eof {
                return scan;
            }
            // Something else: the region ends here (or was never a call).
            if scan.calls.is_empty() && !sectioned {
                scan.bad = true;
            } else {
                scan.end = Some(at);
            }
            return scan;
        }
    }
}
