//! A real SMTP server for the notifier tests: aiosmtpd (`tests/smtp_server.py`, installed by
//! scripts/test), started per test on a port the test picks, scripted by flags (TLS, AUTH,
//! holding or refusing messages), reporting every message it accepts as a JSON line.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use crate::pyserver::PyServer;

/// One e-mail the server accepted (answered 250 after DATA).
#[derive(Debug, Clone)]
pub struct Mail {
    pub n: u64,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub auth_user: Option<String>,
    pub tls: bool,
    /// The message as received, CRLF line ends.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        unfolded
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// The whole message with runs of whitespace collapsed, for phrases that may wrap.
    pub fn flat(&self) -> String {
        self.data.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// A running aiosmtpd; killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    server: PyServer,
}

/// A port nothing listens on right now (handed out by the OS and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Throw-away TLS material (scripts/test-certs): ca.pem, server.pem, server.key in `dir`.
pub fn make_certs(dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-certs");
    let status = std::process::Command::new(script)
        .arg(dir)
        .status()
        .expect("run scripts/test-certs (needs the openssl command)");
    assert!(status.success(), "scripts/test-certs failed");
}

impl SmtpServer {
    /// Starts the server on `port` with extra `flags` (see tests/smtp_server.py) and waits
    /// until it listens.
    pub async fn start(port: u16, flags: &[&str]) -> SmtpServer {
        let args: Vec<String> = ["--port", &port.to_string()]
            .into_iter()
            .chain(flags.iter().copied())
            .map(str::to_owned)
            .collect();
        let server = PyServer::spawn(
            "smtp_server.py",
            &args,
            " (run scripts/test, which installs aiosmtpd)",
        );
        server
            .wait_event(Duration::from_secs(30), "the SMTP server listening", |e| {
                e["event"] == "listening"
            })
            .await;
        SmtpServer { port, server }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.server.events()
    }

    /// Every message accepted so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "message")
            .map(|e| Mail {
                n: e["n"].as_u64().unwrap_or_default(),
                message_id: e["message_id"].as_str().unwrap_or_default().to_owned(),
                mail_from: e["mail_from"].as_str().unwrap_or_default().to_owned(),
                rcpt_tos: e["rcpt_tos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                auth_user: e["auth_user"].as_str().map(str::to_owned),
                tls: e["tls"].as_bool().unwrap_or(false),
                data: e["data"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// Accepted messages with this Message-ID.
    pub fn mails_with_id(&self, message_id: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.message_id == message_id)
            .collect()
    }

    /// Waits until an event satisfies `pred`; panics after `timeout`.
    pub async fn wait_event(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        self.server.wait_event(timeout, what, pred).await;
    }

    /// Waits until a message with this Message-ID was accepted; returns the first.
    pub async fn wait_mail(&self, timeout: Duration, message_id: &str) -> Mail {
        self.wait_event(
            timeout,
            &format!("an e-mail with Message-ID {message_id}"),
            |e| e["event"] == "message" && e["message_id"] == message_id,
        )
        .await;
        self.mails_with_id(message_id).remove(0)
    }

    /// True once the server saw DATA for a message with this Message-ID (answered or not).
    pub fn saw_data(&self, message_id: &str) -> bool {
        self.events()
            .iter()
            .any(|e| e["event"] == "data" && e["message_id"] == message_id)
    }

    /// The number of `event` events reported.
    pub fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == event).count()
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}
