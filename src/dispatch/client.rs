//! The HTTP side of dispatch: one pooled reqwest client that posts signed requests with a
//! timeout, follows no redirects, connects only to addresses the SSRF guard admitted, and
//! reads at most a small part of the response body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};

use crate::config::DeliveryConfig;
use crate::delivery::ErrorClass;
use crate::dispatch::classify::AttemptResult;
use crate::dispatch::ssrf::{GuardedResolver, Refusal, SsrfGuard};
use crate::sign::SignedHeaders;
use crate::telemetry::ErrorChain;

/// What one request produced.
#[derive(Debug)]
pub struct Exchange {
    pub result: AttemptResult,
    /// For operator logs only: the error and its causes when no response arrived. May name
    /// resolved addresses, so it never goes into records a customer sees.
    pub detail: Option<String>,
    /// The start of the response body, lossily decoded, for the attempts log.
    pub snippet: Option<String>,
    pub latency: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("building the HTTP client")]
    Build(#[source] reqwest::Error),
}

#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
    body_limit: usize,
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static(crate::sign::WEBHOOK_ID);
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static(crate::sign::WEBHOOK_TIMESTAMP);
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static(crate::sign::WEBHOOK_SIGNATURE);
/// Header names are lowercase on the wire in HTTP/2 and compared case-insensitively in
/// HTTP/1; `HeaderName` requires the lowercase form.
const X_SIGNATURE_SHA256: HeaderName = HeaderName::from_static("x-signature-sha256");

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));

impl HttpSender {
    pub fn new(config: &DeliveryConfig) -> Result<Self, ClientError> {
        let guard = SsrfGuard::new(config.ssrf_allowlist.clone());
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            // Endpoints are customer servers: never route them through an ambient proxy.
            .no_proxy()
            .tcp_nodelay(true)
            // No cap on idle connections per host: several endpoints often share a host
            // (a customer's gateway), and a cap below their combined concurrency would close
            // and reopen connections on every request. Idle ones close after a minute.
            .pool_idle_timeout(Duration::from_secs(60))
            .dns_resolver(GuardedResolver::new(guard.clone()))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self {
            client,
            guard: Arc::new(guard),
            body_limit: config.response_body_limit,
        })
    }

    /// Posts `body` to `url` with the signature headers. Never fails: every failure is an
    /// [`AttemptResult`] the classifier decides on.
    pub async fn post(&self, url: &url::Url, headers: SignedHeaders, body: Bytes) -> Exchange {
        let started = Instant::now();
        // Hosts given as IP literals never reach the resolver, so check them here.
        if let Err(refusal) = self.guard.check_url(url) {
            return Exchange {
                result: AttemptResult::NoResponse(ErrorClass::RefusedByPolicy),
                detail: Some(refusal.to_string()),
                snippet: None,
                latency: started.elapsed(),
            };
        }
        // The header values move into the request (no copy); the names are constants.
        let request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(WEBHOOK_ID, headers.webhook_id)
            .header(WEBHOOK_TIMESTAMP, headers.webhook_timestamp)
            .header(WEBHOOK_SIGNATURE, headers.webhook_signature)
            .header(X_SIGNATURE_SHA256, headers.x_signature_sha256)
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Exchange {
                    result: AttemptResult::NoResponse(error_class(&e)),
                    detail: Some(ErrorChain(&e).to_string()),
                    snippet: None,
                    latency: started.elapsed(),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let snippet = read_capped(response, self.body_limit).await;
        Exchange {
            result: AttemptResult::Response {
                status,
                retry_after,
            },
            detail: None,
            snippet,
            latency: started.elapsed(),
        }
    }
}

/// The class of a failed request, from the error types in its source chain.
fn error_class(e: &reqwest::Error) -> ErrorClass {
    if let Some(refusal) = Refusal::find(e) {
        return if refusal.is_policy() {
            ErrorClass::RefusedByPolicy
        } else {
            ErrorClass::Dns
        };
    }
    if e.is_timeout() {
        return ErrorClass::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return ErrorClass::Tls;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return ErrorClass::ConnectionRefused,
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => return ErrorClass::ConnectionReset,
                ErrorKind::TimedOut => return ErrorClass::Timeout,
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                return ErrorClass::InvalidResponse;
            }
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return ErrorClass::ConnectionReset;
            }
        }
        source = err.source();
    }
    if e.is_connect() {
        ErrorClass::ConnectionFailed
    } else if e.is_body() || e.is_decode() {
        ErrorClass::InvalidResponse
    } else {
        ErrorClass::Other
    }
}

/// Reads at most `limit` bytes of the body and drops the rest (a huge or endless response
/// must not cost memory). A body that fails midway still yields what arrived.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Option<String> {
    if limit == 0 {
        return None;
    }
    let mut buf = Vec::new();
    while buf.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    if buf.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&buf).into_owned())
    }
}
