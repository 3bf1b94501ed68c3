//! The owner e-mails of the demo: the notifier sends to a mail sink on loopback, and the
//! demo prints what the owner of a disabled endpoint receives.

use crate::config::Config;
use std::time::Duration;

/// The owner e-mails: the service's notifier sends to a mail sink on loopback (standing in
/// for an SMTP server), and each e-mail is printed as the endpoint's owner would read it.
/// The sink runs as long as the returned handle lives.
pub(super) async fn show_owner_emails(
    config: &mut Config,
) -> anyhow::Result<crate::notify::sink::MailSink> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = crate::notify::sink::MailSink::start(tx).await?;
    let n = &mut config.notify;
    n.enabled = true;
    n.from = "Licensor webhooks <webhooks@licensor.example>".to_owned();
    n.reenable_url = "https://dashboard.licensor.example/endpoints/{endpoint_id}".to_owned();
    n.retry_initial = Duration::from_millis(500);
    n.retry_max = n.retry_max.max(n.retry_initial);
    n.smtp.host = sink.addr.ip().to_string();
    n.smtp.port = sink.addr.port();
    n.smtp.tls = crate::config::SmtpTls::None;
    n.smtp.username.clear();
    n.smtp.password = crate::config::Password::default();
    tokio::spawn(async move {
        while let Some(mail) = rx.recv().await {
            println!();
            println!(
                "  +-- e-mail to the endpoint's owner <{}>, as the mail server received it",
                mail.rcpt_to.join(", ")
            );
            for line in crate::notify::sink::readable(&mail.data).lines() {
                println!("  | {line}");
            }
            println!("  +--");
            println!();
        }
    });
    Ok(sink)
}
