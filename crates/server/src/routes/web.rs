//! `GET /`: a chat page for people, served by the same binary that serves the API.
//!
//! Why it looks like this:
//! * **Self-contained.** The page, its script and its style sheet are compiled into the binary
//!   with `include_str!` (sources in `src/web/`): no CDN, no npm, no build step, nothing to
//!   install next to `owl`, and it works on a machine without internet access.
//! * **Public page, private API.** The page itself holds no secret, so it and its assets are
//!   served without the API key ([`is_public`] is what `layers::require_key` exempts); the
//!   script asks the user for the key when `/v1/models` answers 401 and keeps it in the
//!   browser's localStorage. Everything the page does goes through the public API.
//! * **Never stale, rarely re-sent.** Assets carry an `ETag` (a hash of their text, computed at
//!   compile time) with `Cache-Control: no-cache`: the browser revalidates on every load and
//!   gets a bodiless 304 unless the binary changed.
//! * **Locked down.** The page runs only its own script (`Content-Security-Policy`), talks only
//!   to this origin, and cannot be framed; Markdown is rendered from escaped text.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file and the path it is served at.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// FNV-1a of `body`, the `ETag`.
    hash: u64,
}

const fn fnv1a(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($path:expr, $ty:expr, $file:expr) => {
        Asset {
            path: $path,
            content_type: $ty,
            body: include_str!($file),
            hash: fnv1a(include_str!($file)),
        }
    };
}

static ASSETS: [Asset; 3] = [
    asset!("/", "text/html; charset=utf-8", "../web/index.html"),
    asset!(
        "/web/app.js",
        "text/javascript; charset=utf-8",
        "../web/app.js"
    ),
    asset!(
        "/web/style.css",
        "text/css; charset=utf-8",
        "../web/style.css"
    ),
];

/// The page's policy: its own script and style only, API calls to this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True for the page and its assets, which are served without the API key.
pub fn is_public(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// The page's routes (`GET` and, from axum, `HEAD`).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |r, a| {
        r.route(a.path, get(move |h: HeaderMap| async move { serve(a, &h) }))
    })
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
            })
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.path == "/" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_and_its_assets_are_public() {
        assert!(is_public("/"));
        assert!(is_public("/web/app.js"));
        assert!(is_public("/web/style.css"));
        assert!(!is_public("/v1/models"));
        assert!(!is_public("/web/"));
        assert!(!is_public("/web/other.js"));
    }

    #[test]
    fn the_page_loads_its_own_assets() {
        let html = ASSETS[0].body;
        assert!(html.contains("src=\"/web/app.js\""));
        assert!(html.contains("href=\"/web/style.css\""));
        assert_ne!(ASSETS[1].hash, ASSETS[2].hash);
    }
}
