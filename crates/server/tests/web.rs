//! In-process tests of the chat page (`GET /` and its assets): served with the right types and
//! caching headers, and without the API key while the API itself still needs it. How the page
//! behaves in a browser is tested end to end (`tests/e2e/test_chat_page.py`, Chromium).
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{config, get, send};
use owl_server::AppState;

fn keyed() -> axum::Router {
    // The page never needs the model: a server still loading serves it too.
    owl_server::router(AppState::loading(config(Some("sekret"))))
}

#[tokio::test]
async fn the_page_is_served_without_the_key() {
    let r = get(keyed(), "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache");
    assert!(r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let html = r.text();
    assert!(html.contains("<textarea id=\"message\" aria-label=\"Message\""));
    assert!(html.contains("aria-label=\"Model\""));
    assert!(html.contains("aria-label=\"API key\""));
}

#[tokio::test]
async fn assets_are_served_without_the_key_with_their_types() {
    for (path, ty, needle) in [
        (
            "/web/app.js",
            "text/javascript; charset=utf-8",
            "/v1/chat/completions",
        ),
        (
            "/web/style.css",
            "text/css; charset=utf-8",
            "prefers-color-scheme",
        ),
    ] {
        let r = get(keyed(), path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers[header::CONTENT_TYPE], ty);
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(r.text().contains(needle), "{path}");

        // Revalidation: the same ETag answers 304 without a body.
        let etag = r.headers[header::ETAG].clone();
        let req = Request::get(path)
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap();
        let r = send(keyed(), req).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(r.body.is_empty());
    }
}

#[tokio::test]
async fn head_works_and_the_api_still_needs_the_key() {
    let req = Request::builder()
        .method(Method::HEAD)
        .uri("/")
        .body(Body::empty())
        .unwrap();
    let r = send(keyed(), req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());

    let r = get(keyed(), "/v1/models").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    // Only the page's own paths are open: anything else under /web/ is not.
    let r = get(keyed(), "/web/other.js").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let req = Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer sekret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(keyed(), req).await.status, StatusCode::OK);
}
