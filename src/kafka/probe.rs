//! The start-up connectivity check: one metadata round trip to the brokers with the
//! configured security settings, failing fast and clearly on a rejected password or an
//! untrusted broker certificate instead of letting every client retry in the background.
//!
//! librdkafka reports authentication and TLS failures only through its error callback, while
//! the request that needed the connection simply times out; so the probe client records the
//! callback's errors and the check polls metadata in short rounds, stopping at the first
//! such error.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};

use crate::config::KafkaConfig;

/// Why start-up could not talk to Kafka. Each message says which settings to look at.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot create a Kafka client with these settings (check kafka.properties)")]
    Client(#[source] KafkaError),
    #[error(
        "Kafka at {servers} rejected the credentials: {reason}. Check kafka.properties \
         sasl.mechanism, sasl.username and sasl.password (HOOKRELAY__KAFKA__PROPERTIES__SASL_PASSWORD)"
    )]
    Authentication { servers: String, reason: String },
    #[error(
        "TLS with Kafka at {servers} failed: {reason}. If the broker's certificate is signed by \
         a private CA, point kafka.properties ssl.ca.location at that CA's PEM file; check \
         that the broker name matches its certificate and that security.protocol is SSL or SASL_SSL"
    )]
    Tls { servers: String, reason: String },
    #[error(
        "no Kafka broker at {servers} answered within {waited}; last error: {last}. Check \
         kafka.bootstrap_servers, and that kafka.properties security.protocol is what the \
         listener expects (SSL or SASL_SSL for a TLS listener)"
    )]
    Unreachable {
        servers: String,
        waited: String,
        last: String,
    },
    #[error("the Kafka connectivity check did not finish")]
    Join(#[source] tokio::task::JoinError),
}

/// What the check saw of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSeen {
    pub brokers: usize,
}

/// Fetches cluster metadata with `kafka`'s settings within `kafka.connect_timeout`.
pub async fn check_connection(kafka: &KafkaConfig) -> Result<ClusterSeen, ConnectError> {
    let mut client = super::client_config(kafka);
    // The probe reads librdkafka's connection-failure log lines (see ProbeContext), whatever
    // the process's log level says.
    if client.get("log_level").is_none() {
        client.set("log_level", "6");
    }
    let servers = kafka.bootstrap_servers.clone();
    let timeout = kafka.connect_timeout;
    tokio::task::spawn_blocking(move || probe(client, servers, timeout))
        .await
        .map_err(ConnectError::Join)?
}

/// How one error from librdkafka's error callback bears on start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Retrying cannot help: the settings are wrong.
    Authentication(String),
    Tls(String),
    /// Possibly passing (a broker still starting, a network blip): keep trying until the bound.
    Transient(String),
}

/// Sorts an error the client reported: its code first, then librdkafka's wording for the
/// cases it files under a generic transport failure.
pub fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Verdict {
    let lower = reason.to_ascii_lowercase();
    match code {
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
            Verdict::Authentication(reason.to_owned())
        }
        Some(RDKafkaErrorCode::SSL) => Verdict::Tls(reason.to_owned()),
        _ if lower.contains("sasl authentication") => Verdict::Authentication(reason.to_owned()),
        _ if lower.contains("ssl handshake failed") || lower.contains("certificate verify") => {
            Verdict::Tls(reason.to_owned())
        }
        _ => Verdict::Transient(reason.to_owned()),
    }
}

/// Records what librdkafka reports while the probe runs, instead of logging it: the check
/// reports the outcome once, itself.
#[derive(Default)]
struct ProbeContext {
    fatal: Mutex<Option<Verdict>>,
    /// The last error the error callback reported, other than "all brokers are down".
    last: Mutex<Option<String>>,
    /// The last connection failure librdkafka logged: some reasons only reach the log, e.g.
    /// a plaintext client closed by a TLS listener.
    last_logged: Mutex<Option<String>>,
    /// "1/1 brokers are down", when nothing better was said.
    all_down: Mutex<Option<String>>,
}

impl ProbeContext {
    fn fatal(&self) -> Option<Verdict> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn last(&self) -> Option<String> {
        let get = |m: &Mutex<Option<String>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        get(&self.last)
            .or_else(|| get(&self.last_logged))
            .or_else(|| get(&self.all_down))
    }
}

impl ClientContext for ProbeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, fac, message, "librdkafka (start-up check)");
        if fac == "FAIL" || (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            *self.last_logged.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.to_owned());
            // librdkafka does not always repeat a connection failure on the error callback
            // (the same failure again is only logged), so a failed handshake or a refused
            // login read from the log is as final as one from the callback.
            let verdict = classify(None, message);
            if !matches!(verdict, Verdict::Transient(_)) {
                let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
                fatal.get_or_insert(verdict);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let verdict = classify(code, reason);
        // "1/1 brokers are down" follows the error that says why; keep the why.
        let slot = if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            &self.all_down
        } else {
            &self.last
        };
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
        if !matches!(verdict, Verdict::Transient(_)) {
            let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
            fatal.get_or_insert(verdict);
        }
    }
}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = ();

    /// The probe produces nothing.
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// One metadata request per round, short enough to notice a fatal error within a second.
const ROUND: Duration = Duration::from_millis(500);

fn probe(
    client: rdkafka::ClientConfig,
    servers: String,
    timeout: Duration,
) -> Result<ClusterSeen, ConnectError> {
    let producer: BaseProducer<ProbeContext> = client
        .create_with_context(ProbeContext::default())
        .map_err(ConnectError::Client)?;
    let started = Instant::now();
    let mut last_request_error = None;
    loop {
        let round = ROUND.min(timeout.saturating_sub(started.elapsed()));
        let metadata = producer.client().fetch_metadata(None, round);
        // Serves queued error events, so the context sees them.
        producer.poll(Duration::ZERO);
        match producer.context().fatal() {
            Some(Verdict::Authentication(reason)) => {
                return Err(ConnectError::Authentication { servers, reason });
            }
            Some(Verdict::Tls(reason)) => return Err(ConnectError::Tls { servers, reason }),
            _ => {}
        }
        match metadata {
            Ok(m) if !m.brokers().is_empty() => {
                return Ok(ClusterSeen {
                    brokers: m.brokers().len(),
                });
            }
            Ok(_) => {}
            Err(e) => last_request_error = Some(e.to_string()),
        }
        if started.elapsed() >= timeout {
            let last = producer
                .context()
                .last()
                .or(last_request_error)
                .unwrap_or_else(|| "none reported".to_owned());
            return Err(ConnectError::Unreachable {
                servers,
                waited: humantime::format_duration(timeout).to_string(),
                last,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_tls_failures_are_final_and_the_rest_is_retried() {
        let auth = "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 12ms in state AUTH_REQ)";
        assert_eq!(
            classify(Some(RDKafkaErrorCode::Authentication), auth),
            Verdict::Authentication(auth.into())
        );
        assert!(matches!(
            classify(Some(RDKafkaErrorCode::BrokerTransportFailure), auth),
            Verdict::Authentication(_)
        ));
        let tls = "ssl://127.0.0.1:19094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified";
        assert!(matches!(
            classify(Some(RDKafkaErrorCode::SSL), tls),
            Verdict::Tls(_)
        ));
        assert!(matches!(
            classify(Some(RDKafkaErrorCode::BrokerTransportFailure), tls),
            Verdict::Tls(_)
        ));
        assert!(matches!(
            classify(
                Some(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down"
            ),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(
                None,
                "Connect to ipv4#127.0.0.1:1 failed: Connection refused"
            ),
            Verdict::Transient(_)
        ));
    }

    #[test]
    fn a_tls_failure_only_logged_is_final_too() {
        let ctx = ProbeContext::default();
        ctx.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "[thrd:sasl_ssl://127.0.0.1:19094/bootstrap]: sasl_ssl://127.0.0.1:19094/bootstrap: ../ssl/statem/statem_clnt.c:1889:tls_post_process_server_certificate error:0A000086:SSL routines::certificate verify failed (after 6ms in state SSL_HANDSHAKE)",
        );
        assert!(matches!(ctx.fatal(), Some(Verdict::Tls(_))));
        let refused = ProbeContext::default();
        refused.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)",
        );
        assert_eq!(refused.fatal(), None, "a refused connection may pass");
    }

    #[tokio::test]
    async fn nothing_listening_fails_after_the_bound_with_the_last_error() {
        // A port the OS just handed out and took back: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let kafka = KafkaConfig {
            bootstrap_servers: format!("127.0.0.1:{port}"),
            group_id: "g".into(),
            client_id: "probe-test".into(),
            connect_timeout: Duration::from_secs(2),
            properties: Default::default(),
        };
        let started = Instant::now();
        let err = check_connection(&kafka).await.expect_err("nothing listens");
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
        let text = err.to_string();
        assert!(matches!(err, ConnectError::Unreachable { .. }), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("2s"), "{text}");
    }

    #[tokio::test]
    async fn a_bad_property_fails_at_once_naming_it() {
        let kafka = KafkaConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            group_id: "g".into(),
            client_id: "probe-test".into(),
            connect_timeout: Duration::from_secs(30),
            properties: [
                (
                    "ssl.ca.location".to_owned(),
                    "/nonexistent/ca.pem".to_owned(),
                ),
                ("security.protocol".to_owned(), "SSL".to_owned()),
            ]
            .into(),
        };
        let started = Instant::now();
        let err = check_connection(&kafka).await.expect_err("no such CA file");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(err, ConnectError::Client(_)), "{err}");
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert!(chain.contains("ssl.ca.location"), "{chain}");
    }
}
