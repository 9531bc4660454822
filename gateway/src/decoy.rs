//! The camouflage web site: what every request that is not a valid upgrade gets (SPEC §2.3).
//!
//! `GET`/`HEAD` of a file under the decoy folder returns it; everything else returns the same
//! 404 page. Responses carry only the headers a plain static server sends.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;

/// The body type of every response the listener sends.
pub type Body = Full<Bytes>;

/// Largest decoy file served; bigger ones get the 404 (the decoy is a small static site).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A static site served from a folder, or just 404s.
#[derive(Clone, Debug)]
pub struct DecoySite {
    root: Option<PathBuf>,
    server: String,
}

impl DecoySite {
    /// Serves files under `root` (if any) with the `Server` header `server`.
    pub fn new(root: Option<PathBuf>, server: impl Into<String>) -> Self {
        let root = root.map(|r| r.canonicalize().unwrap_or(r));
        DecoySite {
            root,
            server: server.into(),
        }
    }

    /// The `Server` header value.
    pub fn server_header(&self) -> &str {
        &self.server
    }

    /// The response a plain static web server would give to `req`.
    pub async fn respond<B>(&self, req: &Request<B>) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        if req.method() == Method::GET || head {
            if let Some(path) = self.resolve(req.uri().path()) {
                if let Some(response) = self.file(&path, head).await {
                    metrics::counter!(crate::metrics::DECOY_RESPONSES_TOTAL, "status" => "200")
                        .increment(1);
                    return response;
                }
            }
        }
        metrics::counter!(crate::metrics::DECOY_RESPONSES_TOTAL, "status" => "404").increment(1);
        self.not_found(head)
    }

    /// The 404 response.
    pub fn not_found(&self, head: bool) -> Response<Body> {
        let page = format!(
            "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>{}</center>\r\n</body>\r\n</html>\r\n",
            self.server
        );
        self.build(StatusCode::NOT_FOUND, "text/html", Bytes::from(page), head)
    }

    /// Maps a request path to a file under the root, refusing anything that could leave it.
    fn resolve(&self, uri_path: &str) -> Option<PathBuf> {
        let root = self.root.as_ref()?;
        let decoded = percent_decode(uri_path)?;
        let mut path = root.clone();
        for component in Path::new(decoded.trim_start_matches('/')).components() {
            match component {
                Component::Normal(part) => path.push(part),
                Component::CurDir => {}
                // `..`, absolute parts and prefixes never resolve.
                _ => return None,
            }
        }
        if decoded.ends_with('/') || path.is_dir() {
            path.push("index.html");
        }
        // Symlinks must not lead out of the root either.
        let real = path.canonicalize().ok()?;
        real.starts_with(root).then_some(real)
    }

    async fn file(&self, path: &Path, head: bool) -> Option<Response<Body>> {
        let meta = tokio::fs::metadata(path).await.ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE {
            return None;
        }
        let body = tokio::fs::read(path).await.ok()?;
        Some(self.build(StatusCode::OK, content_type(path), Bytes::from(body), head))
    }

    fn build(
        &self,
        status: StatusCode,
        content_type: &str,
        body: Bytes,
        head: bool,
    ) -> Response<Body> {
        let len = body.len();
        let body = if head { Bytes::new() } else { body };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Ok(v) = header::HeaderValue::from_str(&self.server) {
            headers.insert(header::SERVER, v);
        }
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_str(content_type)
                .unwrap_or(header::HeaderValue::from_static("application/octet-stream")),
        );
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
        response
    }
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html",
        Some("css") => "text/css",
        Some("js" | "mjs") => "application/javascript",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        Some("xml") => "text/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` for malformed escapes, NUL or non-UTF-8 results.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) || out.contains(&b'\\') {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hi").unwrap();
        std::fs::create_dir(dir.path().join("css")).unwrap();
        std::fs::write(dir.path().join("css/site.css"), "a{}").unwrap();
        let site = DecoySite::new(Some(dir.path().to_owned()), "nginx");
        assert!(site.resolve("/").unwrap().ends_with("index.html"));
        assert!(site.resolve("/css/site.css").is_some());
        assert!(site.resolve("/css/../index.html").is_none());
        assert!(site.resolve("/%2e%2e/etc/passwd").is_none());
        assert!(site.resolve("/missing").is_none());
        assert!(site.resolve("/a%00b").is_none());
        assert_eq!(content_type(Path::new("x.CSS")), "text/css");
    }
}
