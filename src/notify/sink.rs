//! A minimal in-process SMTP server that accepts every e-mail and hands it over on a
//! channel: what `hookrelay demo` uses to show the e-mail an owner receives, without a mail
//! server. Plain SMTP on loopback, no TLS, no authentication, no relaying; not for
//! production, and not what the tests check the notifier against (they use an independent
//! server).

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("binding the mail sink on loopback")]
    Bind(#[source] std::io::Error),
}

/// One e-mail as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

/// A running sink; dropping it stops accepting.
pub struct MailSink {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Largest message the sink keeps; the rest of a longer one is dropped.
const MAX_MESSAGE: usize = 1 << 20;

impl MailSink {
    /// Listens on a free loopback port; every accepted e-mail goes to `deliver`.
    pub async fn start(deliver: mpsc::UnboundedSender<Received>) -> Result<MailSink, SinkError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(SinkError::Bind)?;
        let addr = listener.local_addr().map_err(SinkError::Bind)?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let deliver = deliver.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, &deliver).await {
                        tracing::debug!(error = %e, "mail sink session ended");
                    }
                });
            }
        });
        Ok(MailSink { addr, task })
    }
}

/// One SMTP session: the commands a sending client uses, each answered positively.
async fn session(
    stream: TcpStream,
    deliver: &mpsc::UnboundedSender<Received>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 hookrelay-demo mail sink ready\r\n")
        .await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-hookrelay-demo\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "MAIL" => {
                mail_from = angle(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(angle(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                let _ = deliver.send(Received {
                    mail_from: std::mem::take(&mut mail_from),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                });
                b"250 OK: queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The parts of a received e-mail a person reads, for printing: the main headers and the
/// plain-text part (quoted-printable decoded). Lines are `\n`-terminated.
pub fn readable(data: &str) -> String {
    let data = data.replace("\r\n", "\n");
    let (head, body) = data.split_once("\n\n").unwrap_or((data.as_str(), ""));
    // Unfold continued header lines.
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let mut out = String::new();
    for name in ["Date", "From", "To", "Reply-To", "Subject", "Message-ID"] {
        let prefix = format!("{name}: ");
        if let Some(line) = head.lines().find(|l| l.starts_with(&prefix)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&plain_part(body).unwrap_or_else(|| body.to_owned()));
    out
}

/// The text/plain part of a MIME body, decoded.
fn plain_part(body: &str) -> Option<String> {
    let start = body.find("Content-Type: text/plain")?;
    let part = &body[start..];
    let (headers, content) = part.split_once("\n\n")?;
    let content = match content.find("\n--") {
        Some(end) => &content[..end + 1],
        None => content,
    };
    let quoted = headers.contains("Content-Transfer-Encoding: quoted-printable");
    Some(if quoted {
        decode_quoted_printable(content)
    } else {
        content.to_owned()
    })
}

/// Quoted-printable decoding: soft line breaks removed, `=XX` turned back into bytes.
fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The address inside `<…>` of a MAIL or RCPT command.
fn angle(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_default()
}

/// Reads the message up to the lone `.` line, undoing dot-stuffing.
async fn read_data<R: AsyncBufReadExt + Unpin>(lines: &mut R) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(data);
        }
        if data.len() < MAX_MESSAGE {
            data.push_str(content.strip_prefix('.').unwrap_or(content));
            data.push_str("\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Password, SmtpConfig, SmtpTls};
    use crate::notify::smtp::Mailer;
    use std::time::Duration;

    #[tokio::test]
    async fn the_mailer_hands_an_e_mail_to_the_sink() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = MailSink::start(tx).await.expect("sink");
        let mailer = Mailer::new(&SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.addr.port(),
            tls: SmtpTls::None,
            username: String::new(),
            password: Password::default(),
            ca_file: String::new(),
            timeout: Duration::from_secs(5),
        })
        .expect("mailer");
        let from: lettre::Address = "webhooks@licensor.example".parse().unwrap();
        let to: lettre::Address = "owner@customer.example".parse().unwrap();
        mailer
            .send(&from, &to, b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n")
            .await
            .expect("accepted");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("in time")
            .expect("one e-mail");
        assert_eq!(got.mail_from, "webhooks@licensor.example");
        assert_eq!(got.rcpt_to, vec!["owner@customer.example".to_owned()]);
        assert!(got.data.contains("Subject: hi\r\n"), "{:?}", got.data);
        assert!(
            got.data.contains("\r\n.leading dot\r\n"),
            "unstuffed: {:?}",
            got.data
        );
    }

    #[test]
    fn readable_shows_the_headers_and_the_decoded_plain_text() {
        let raw = "Subject: Webhook endpoint ep_1 disabled\r\nFrom: a@x.example\r\nTo: b@y.example\r\n\
                   Message-ID: <ntf_1@x.example>\r\nContent-Type: multipart/alternative;\r\n boundary=\"B\"\r\n\r\n\
                   --B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                   Hello =E2=80=93 a long=\r\n line\r\n--B\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--B--\r\n";
        let shown = readable(raw);
        assert!(shown.starts_with("From: a@x.example\nTo: b@y.example\nSubject: Webhook endpoint ep_1 disabled\nMessage-ID: <ntf_1@x.example>\n\n"), "{shown}");
        assert!(shown.ends_with("Hello \u{2013} a long line\n"), "{shown}");
        assert!(!shown.contains("<p>"), "{shown}");
    }
}
