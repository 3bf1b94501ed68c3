//! The receivers of the fault suite and their ledger: a small HTTP/1.1 server on loopback
//! whose endpoints behave as a scenario scripts them (healthy, slow, failing, throttling,
//! hanging, resetting mid-response, streaming a huge body, redirecting inside), verify every
//! signature with the endpoint's secret, and count each (endpoint, event) pair they accept.
//! Nothing in hookrelay writes to the ledger, so it is the independent count a scenario ends
//! on. Raw TCP rather than a framework, so an endpoint can misbehave below HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay::ids::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How one endpoint answers.
#[derive(Clone, Debug)]
pub enum Behavior {
    Healthy,
    /// 200 after this long.
    Slow(Duration),
    /// Always this status.
    Status(u16),
    /// 429 with `Retry-After: secs` the first `times` requests, then 200.
    Throttle {
        times: u32,
        secs: u32,
    },
    /// Reads the request and never answers.
    Hang,
    /// Starts an answer and resets the connection halfway.
    ResetMidResponse,
    /// 200 with a body of this many bytes, streamed.
    HugeBody(u64),
    /// 301 to an internal address (never to be followed).
    RedirectInternal,
}

impl Behavior {
    /// Whether the endpoint ends up accepting deliveries (its pairs are expected).
    pub fn accepts(&self) -> bool {
        matches!(
            self,
            Behavior::Healthy
                | Behavior::Slow(_)
                | Behavior::Throttle { .. }
                | Behavior::HugeBody(_)
        )
    }
}

#[derive(Default)]
struct Inner {
    endpoints: HashMap<String, (Behavior, Secret)>,
    /// (endpoint, event id) -> times accepted (answered 2xx).
    pairs: HashMap<(String, String), u32>,
    /// Requests per endpoint, accepted or not.
    requests: HashMap<String, u32>,
    bad_signatures: u64,
}

#[derive(Clone)]
pub struct Ledger {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

/// What a scenario reads off the ledger at the end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count {
    /// Expected pairs accepted at least once.
    pub delivered: usize,
    pub expected: usize,
    /// Accepted pairs beyond the first acceptance of each.
    pub duplicates: u64,
}

impl Ledger {
    pub async fn start() -> Ledger {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ledger");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = inner.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, inner).await;
                });
            }
        });
        Ledger { addr, inner }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers endpoint `name`; returns its URL.
    pub fn endpoint(&self, name: &str, behavior: Behavior, secret: &Secret) -> String {
        self.lock()
            .endpoints
            .insert(name.to_owned(), (behavior, secret.clone()));
        format!("http://{}/{name}", self.addr)
    }

    /// Changes how endpoint `name` answers from now on.
    pub fn set(&self, name: &str, behavior: Behavior) {
        if let Some(entry) = self.lock().endpoints.get_mut(name) {
            entry.0 = behavior;
        }
    }

    pub fn count(&self, expected: &[(String, String)]) -> Count {
        let inner = self.lock();
        let delivered = expected
            .iter()
            .filter(|p| inner.pairs.contains_key(*p))
            .count();
        let duplicates = inner.pairs.values().map(|n| u64::from(n - 1)).sum();
        Count {
            delivered,
            expected: expected.len(),
            duplicates,
        }
    }

    /// Distinct pairs accepted so far.
    pub fn accepted_pairs(&self) -> usize {
        self.lock().pairs.len()
    }

    pub fn bad_signatures(&self) -> u64 {
        self.lock().bad_signatures
    }

    pub fn requests(&self, name: &str) -> u32 {
        self.lock().requests.get(name).copied().unwrap_or(0)
    }

    /// Waits until every expected pair was accepted, or `within` passed. Returns when the
    /// last one arrived, if they all did.
    pub async fn wait_complete(&self, expected: &[(String, String)], within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let count = self.count(expected);
            if count.delivered == count.expected {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One request as read off the wire.
struct Request {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Serves requests on one keep-alive connection until it closes.
async fn serve(mut stream: TcpStream, inner: Arc<Mutex<Inner>>) -> std::io::Result<()> {
    let mut buffered: Vec<u8> = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffered).await? else {
            return Ok(());
        };
        let name = request.path.trim_start_matches('/').to_owned();
        let (behavior, accepted) = judge(&inner, &name, &request);
        match behavior {
            Behavior::Healthy | Behavior::Throttle { .. } if accepted => {
                respond(&mut stream, 200, &[], b"ok").await?
            }
            Behavior::Throttle { secs, .. } => {
                respond(
                    &mut stream,
                    429,
                    &[("retry-after", secs.to_string())],
                    b"later",
                )
                .await?
            }
            Behavior::Healthy => respond(&mut stream, 200, &[], b"ok").await?,
            Behavior::Slow(delay) => {
                tokio::time::sleep(delay).await;
                respond(&mut stream, 200, &[], b"ok").await?
            }
            Behavior::Status(status) => respond(&mut stream, status, &[], b"error").await?,
            Behavior::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            Behavior::ResetMidResponse => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                    .await?;
                // Linger 0: closing sends a reset instead of a clean end.
                let _ = stream.set_zero_linger();
                drop(stream);
                return Ok(());
            }
            Behavior::HugeBody(size) => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    // hookrelay stops reading after its cap and drops the connection.
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return Ok(());
                    }
                    left -= n as u64;
                }
            }
            Behavior::RedirectInternal => {
                respond(
                    &mut stream,
                    301,
                    &[(
                        "location",
                        "http://169.254.169.254/latest/meta-data/".to_owned(),
                    )],
                    b"",
                )
                .await?
            }
        }
    }
}

/// Counts the request, verifies its signature and decides whether it is accepted (2xx).
fn judge(inner: &Arc<Mutex<Inner>>, name: &str, request: &Request) -> (Behavior, bool) {
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    let Some((behavior, secret)) = inner.endpoints.get(name).cloned() else {
        return (Behavior::Status(404), false);
    };
    let n = {
        let count = inner.requests.entry(name.to_owned()).or_default();
        *count += 1;
        *count
    };
    let header = |k: &str| request.headers.get(k).map(String::as_str).unwrap_or("");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let verified = hookrelay::sign::verify(
        &secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &request.body,
        now,
    )
    .is_ok();
    if !verified {
        inner.bad_signatures += 1;
    }
    let accepted = verified
        && match &behavior {
            Behavior::Throttle { times, .. } => n > *times,
            other => other.accepts(),
        };
    if accepted {
        for id in event_ids(&request.body) {
            *inner.pairs.entry((name.to_owned(), id)).or_default() += 1;
        }
    }
    (behavior, accepted)
}

/// The event ids in a body: one for a single event, each of a batch's.
fn event_ids(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    if v["type"] == "batch" {
        v["data"]["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        v["id"].as_str().map(str::to_owned).into_iter().collect()
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await
}

/// Reads one request (headers and a content-length body); `None` when the peer closed.
async fn read_request(
    stream: &mut TcpStream,
    buffered: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffered.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffered.extend_from_slice(&chunk[..n]);
    }
    let body = buffered[header_end..header_end + length].to_vec();
    buffered.drain(..header_end + length);
    Ok(Some(Request {
        path,
        headers,
        body,
    }))
}
