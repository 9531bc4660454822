//! The OTLP/HTTP exporter's client: the workspace's reqwest 0.12 in its blocking form (the batch
//! span processor exports from its own thread, with no async runtime), so the exporter does not
//! pull a second reqwest into the build.

use std::io::Read;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Answers larger than this are not read (a collector answers with a few bytes).
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// A blocking HTTP client for the exporter.
#[derive(Debug)]
pub(crate) struct BlockingHttpClient(reqwest::blocking::Client);

impl BlockingHttpClient {
    /// A client whose every request gives up after `timeout`. Built on a thread of its own: the
    /// blocking client starts a runtime, which must not happen on an async worker.
    pub(crate) fn new(timeout: Duration) -> Result<Self, String> {
        std::thread::Builder::new()
            .name("otlp-http-client".into())
            .spawn(move || {
                reqwest::blocking::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .user_agent(concat!("httvps-otlp/", env!("CARGO_PKG_VERSION")))
                    .build()
            })
            .map_err(|e| format!("cannot start the OTLP client's thread: {e}"))?
            .join()
            .map_err(|_| "the OTLP client's thread panicked".to_owned())?
            .map(BlockingHttpClient)
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))
    }
}

#[async_trait::async_trait]
impl HttpClient for BlockingHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request: reqwest::blocking::Request = request.map(|body| body.to_vec()).try_into()?;
        let mut response = self.0.execute(request)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        response
            .take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut body)?;
        if body.len() as u64 > MAX_RESPONSE_BYTES {
            return Err("the collector's answer is larger than 4 MiB".into());
        }
        let mut answer = Response::builder().status(status).body(Bytes::from(body))?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}
