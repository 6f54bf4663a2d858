//! The web console: a single-page app built from `console/` and embedded
//! at build time (`build.rs`), served on the API's origin under
//! `/console/`. It uses only the public REST API with the bearer token the
//! user signs in with; the server keeps no session.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// Where the console is served.
pub const PREFIX: &str = "/console/";

/// What the console's pages may load and do: only this origin, no inline
/// scripts, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Shown when the binary was built without the console's assets.
const NOT_BUILT: &str = "<!doctype html><title>dbaas console not built</title>\
     <p>This dbaas-server was built without its web console. Build it with \
     <code>npm --prefix console ci &amp;&amp; npm --prefix console run build</code>, \
     then rebuild dbaas-server.</p>";

/// Whether the console's assets are in this binary.
pub fn is_built() -> bool {
    asset("index.html").is_some()
}

fn asset(path: &str) -> Option<&'static [u8]> {
    assets::ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn respond(status: StatusCode, path: &str, body: &'static [u8]) -> Response {
    // Built assets carry a content hash in their names: cache them for
    // good. The page itself is asked for anew, so a new build shows.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn index() -> Response {
    match asset("index.html") {
        Some(page) => respond(StatusCode::OK, "index.html", page),
        None => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "index.html",
            NOT_BUILT.as_bytes(),
        ),
    }
}

async fn file(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match asset(&path) {
        Some(body) => respond(StatusCode::OK, &path, body),
        None => respond(
            StatusCode::NOT_FOUND,
            "missing.txt",
            b"no such console file",
        ),
    }
}

/// `/` sends people to the console; `/console/` serves it.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to(PREFIX) }))
        .route("/console", get(|| async { Redirect::to(PREFIX) }))
        .route(PREFIX, get(index))
        .route("/console/{*path}", get(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_get_their_content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/x"), "application/octet-stream");
    }
}
