//! Hands one e-mail to the SMTP server: connect (implicit TLS, or STARTTLS, or plain),
//! authenticate, MAIL FROM, RCPT TO, DATA; one connection per e-mail (notices are rare).
//!
//! Each step is its own error, because what a failure means depends on the step: a refused
//! recipient or message (a 5xx answer to RCPT or DATA) is final for that e-mail, while a
//! refused connection, TLS, login or sender is the server's or the operator's problem and is
//! retried until fixed; a notice is never dropped because the mail setup is broken.

use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{SmtpConfig, SmtpTls};

/// A step of the SMTP exchange, for errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::StartTls => "starttls",
            Step::Auth => "auth",
            Step::MailFrom => "mail_from",
            Step::RcptTo => "rcpt_to",
            Step::Data => "data",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("reading notify.smtp.ca_file {path}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("notify.smtp.ca_file {path} holds no usable PEM certificate")]
    CaCertificate {
        path: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("setting up TLS for {host}")]
    TlsSetup {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("SMTP server {server} failed at {}", step.as_str())]
    Step {
        server: String,
        step: Step,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("SMTP server {server} does not offer STARTTLS (notify.smtp.tls = \"starttls\")")]
    NoStartTls { server: String },
    #[error("SMTP server {server} did not answer within {timeout:?} at {}", step.as_str())]
    Timeout {
        server: String,
        step: Step,
        timeout: Duration,
    },
    #[error("the envelope of the e-mail is unusable")]
    Envelope(#[source] lettre::error::Error),
}

impl SmtpError {
    /// True when sending this e-mail again cannot succeed: the server refused the recipient
    /// or the message itself with a permanent (5xx) answer.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Step {
                step: Step::RcptTo | Step::Data,
                source,
                ..
            } => source.is_permanent(),
            SmtpError::Envelope(_) => true,
            _ => false,
        }
    }

    /// The step the error happened at, for the metric label.
    pub fn step(&self) -> &'static str {
        match self {
            SmtpError::Step { step, .. } | SmtpError::Timeout { step, .. } => step.as_str(),
            SmtpError::NoStartTls { .. } => Step::StartTls.as_str(),
            SmtpError::Envelope(_) => "envelope",
            SmtpError::CaFile { .. }
            | SmtpError::CaCertificate { .. }
            | SmtpError::TlsSetup { .. } => "tls_setup",
        }
    }
}

/// The SMTP client, built once from `[notify.smtp]`.
#[derive(Clone)]
pub struct Mailer {
    host: String,
    port: u16,
    mode: SmtpTls,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server())
            .field("mode", &self.mode)
            .field("auth", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, SmtpError> {
        let host = config.host.trim().to_owned();
        let tls = match config.tls {
            SmtpTls::None => None,
            SmtpTls::Starttls | SmtpTls::Implicit => {
                // The name the certificate must carry; brackets off an IPv6 literal.
                let name = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let mut builder = TlsParameters::builder(name);
                if !config.ca_file.is_empty() {
                    let pem =
                        std::fs::read(&config.ca_file).map_err(|source| SmtpError::CaFile {
                            path: config.ca_file.clone(),
                            source,
                        })?;
                    let cert =
                        Certificate::from_pem(&pem).map_err(|source| SmtpError::CaCertificate {
                            path: config.ca_file.clone(),
                            source,
                        })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|source| SmtpError::TlsSetup {
                            host: host.clone(),
                            source,
                        })?,
                )
            }
        };
        let credentials = (!config.username.is_empty()).then(|| {
            Credentials::new(config.username.clone(), config.password.expose().to_owned())
        });
        Ok(Mailer {
            host,
            port: config.port,
            mode: config.tls,
            tls,
            credentials,
            timeout: config.timeout,
            hello: ClientId::default(),
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Sends one e-mail: `from` and `to` are the envelope, `message` the formatted e-mail.
    /// Ok means the server accepted it (250 after the data).
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        message: &[u8],
    ) -> Result<(), SmtpError> {
        let envelope =
            Envelope::new(Some(from.clone()), vec![to.clone()]).map_err(SmtpError::Envelope)?;
        let implicit = match self.mode {
            SmtpTls::Implicit => self.tls.clone(),
            SmtpTls::Starttls | SmtpTls::None => None,
        };
        let mut conn = self
            .step(
                Step::Connect,
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    implicit,
                    None,
                ),
            )
            .await?;
        let result = self.transaction(&mut conn, &envelope, message).await;
        match &result {
            Ok(()) => {
                let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
            }
            Err(_) => {
                let _ = tokio::time::timeout(self.timeout, conn.abort()).await;
            }
        }
        result
    }

    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), SmtpError> {
        if self.mode == SmtpTls::Starttls {
            if !conn.can_starttls() {
                return Err(SmtpError::NoStartTls {
                    server: self.server(),
                });
            }
            if let Some(tls) = self.tls.clone() {
                self.step(Step::StartTls, conn.starttls(tls, &self.hello))
                    .await?;
            }
        }
        if let Some(credentials) = &self.credentials {
            self.step(Step::Auth, conn.auth(DEFAULT_MECHANISMS, credentials))
                .await?;
        }
        self.step(
            Step::MailFrom,
            conn.command(Mail::new(envelope.from().cloned(), vec![])),
        )
        .await?;
        for to in envelope.to() {
            self.step(Step::RcptTo, conn.command(Rcpt::new(to.clone(), vec![])))
                .await?;
        }
        self.step(Step::Data, conn.command(Data)).await?;
        self.step(Step::Data, conn.message(message)).await?;
        Ok(())
    }

    /// Runs one step within the timeout, naming the step in its error.
    async fn step<T>(
        &self,
        step: Step,
        fut: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, SmtpError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(SmtpError::Step {
                server: self.server(),
                step,
                source,
            }),
            Err(_) => Err(SmtpError::Timeout {
                server: self.server(),
                step,
                timeout: self.timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Password;

    fn config(tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: 1,
            tls,
            username: String::new(),
            password: Password::default(),
            ca_file: String::new(),
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let mut c = config(SmtpTls::Starttls);
        c.username = "mailer".into();
        c.password = Password::new("smtp-pass-7");
        let m = Mailer::new(&c).expect("mailer");
        let shown = format!("{m:?}");
        assert!(!shown.contains("smtp-pass-7"), "{shown}");
        assert!(shown.contains("auth: true"), "{shown}");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let mut c = config(SmtpTls::Implicit);
        c.ca_file = "/nonexistent/relay-ca.pem".into();
        let err = Mailer::new(&c).expect_err("no file");
        assert!(
            err.to_string().contains("/nonexistent/relay-ca.pem"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_not_final() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut c = config(SmtpTls::None);
        c.port = port;
        let m = Mailer::new(&c).expect("mailer");
        let from: Address = "a@x.example".parse().unwrap();
        let err = m
            .send(&from, &from, b"Subject: x\r\n\r\nx\r\n")
            .await
            .expect_err("refused");
        assert!(!err.is_permanent(), "{err}");
        assert_eq!(err.step(), "connect");
    }
}
