//! Owner e-mails: a notifier reads `webhook-notifications` in its own consumer group and
//! sends one e-mail per `endpoint.disabled` notice over SMTP.
//!
//! - [`recipient`]: who is told (the endpoint's contact, the account's, the operator's). Pure.
//! - [`message`]: the e-mail itself. Pure.
//! - [`smtp`]: hands an e-mail to the SMTP server, and says whether a failure is final.
//! - [`sink`]: an in-process SMTP server for the demo.
//!
//! At-least-once, like the rest of hookrelay: a notice's offset is stored and committed only
//! after the SMTP server accepted its e-mail, or after it was skipped for good (no recipient,
//! a permanent 5xx for the recipient or message, superseded, undecodable), each skip logged
//! and counted. Every other failure is retried with a doubling backoff, as long as it takes;
//! meanwhile the notifier keeps polling Kafka with its partitions paused, so it stays in its
//! group. A crash between the server's acceptance and the commit sends the e-mail again, with
//! the same `Message-ID` (the notice id), which careful mail systems recognise.

pub mod message;
pub mod recipient;
pub mod sink;
pub mod smtp;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::{ClientConfig, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::ids::{AccountId, EndpointId};
use crate::lifecycle::stopped;
use crate::records::EndpointNotification;
use crate::subscriptions::SubscriptionTable;
use crate::telemetry::metrics::NotifyMetrics;

use self::message::Letterhead;
use self::recipient::Decision;
use self::smtp::{Mailer, SmtpError};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("creating the notifier's consumer")]
    Consumer(#[source] KafkaError),
    #[error("subscribing the notifier to {topic}")]
    Subscribe {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("setting up the SMTP client")]
    Smtp(#[source] SmtpError),
    #[error("{key} {value:?} is not an e-mail address")]
    Address {
        key: &'static str,
        value: String,
        #[source]
        source: lettre::address::AddressError,
    },
}

/// How long a send in progress may still take once shutdown is asked for; after that it is
/// abandoned, uncommitted, and sent again by whoever reads the notice next.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long the loop rests after the consumer reported an error.
const CONSUMER_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// The notifier: one consumer, one SMTP client, the table to find recipients in.
pub struct Notifier {
    consumer: StreamConsumer,
    topic: String,
    group_id: String,
    table: Arc<SubscriptionTable>,
    mailer: Mailer,
    letterhead: Letterhead,
    fallback: Option<Mailbox>,
    retry_initial: Duration,
    retry_max: Duration,
    metrics: NotifyMetrics,
}

/// What became of one notice.
enum Handled {
    /// Sent or skipped for good: its offset may be committed.
    Done,
    /// Shutdown came first: not committed, read again later.
    Stopped,
}

/// What one attempt at a notice came to.
enum Attempt {
    Finished,
    Retry(RetryCause),
    Stopped,
}

/// Why an attempt will be repeated.
enum RetryCause {
    Smtp(SmtpError),
    Table(crate::subscriptions::StoreError),
}

impl std::fmt::Display for RetryCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The whole chain: lettre's and the server's words are what an operator needs.
        let mut source: Option<&dyn std::error::Error> = match self {
            RetryCause::Smtp(e) => Some(e),
            RetryCause::Table(e) => Some(e),
        };
        let mut first = true;
        while let Some(e) = source {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
            first = false;
            source = e.source();
        }
        Ok(())
    }
}

fn parse_mailbox(key: &'static str, value: &str) -> Result<Option<Mailbox>, NotifyError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|source| NotifyError::Address {
            key,
            value: value.to_owned(),
            source,
        })
}

impl Notifier {
    /// Builds the notifier from the config (which must name an SMTP server and a sender) and
    /// subscribes it to the notifications topic.
    pub fn new(
        config: &Config,
        table: Arc<SubscriptionTable>,
        metrics: NotifyMetrics,
    ) -> Result<Notifier, NotifyError> {
        config.validate_notify(true)?;
        let n = &config.notify;
        let from = parse_mailbox("notify.from", &n.from)?.ok_or_else(|| {
            NotifyError::Config(crate::config::ConfigError::Invalid {
                key: "notify.from",
                message: "must be the sender address when the notifier runs".to_owned(),
            })
        })?;
        let message_id_domain = if n.message_id_domain.trim().is_empty() {
            from.email.domain().to_owned()
        } else {
            n.message_id_domain.trim().to_owned()
        };
        let letterhead = Letterhead {
            from,
            reply_to: parse_mailbox("notify.reply_to", &n.reply_to)?,
            message_id_domain,
            reenable_url: (!n.reenable_url.is_empty()).then(|| n.reenable_url.clone()),
        };
        let group_id = config.notify_group_id();
        let consumer: StreamConsumer = consumer_config(config, &group_id)
            .create()
            .map_err(NotifyError::Consumer)?;
        let topic = config.topics.notifications.clone();
        consumer
            .subscribe(&[&topic])
            .map_err(|source| NotifyError::Subscribe {
                topic: topic.clone(),
                source,
            })?;
        Ok(Notifier {
            consumer,
            topic,
            group_id,
            table,
            mailer: Mailer::new(&n.smtp).map_err(NotifyError::Smtp)?,
            letterhead,
            fallback: parse_mailbox("notify.fallback_to", &n.fallback_to)?,
            retry_initial: n.retry_initial,
            retry_max: n.retry_max,
            metrics,
        })
    }

    /// Sends e-mails until `shutdown` turns true, then commits what is done.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), NotifyError> {
        info!(
            topic = %self.topic,
            group = %self.group_id,
            smtp = %self.mailer.server(),
            "notifier started: e-mailing owners of disabled endpoints"
        );
        let mut pending: VecDeque<OwnedMessage> = VecDeque::new();
        loop {
            let msg = match pending.pop_front() {
                Some(msg) => msg,
                None => tokio::select! {
                    () = stopped(&mut shutdown) => break,
                    received = self.consumer.recv() => match received {
                        Ok(m) => m.detach(),
                        Err(e) => {
                            warn!(error = %e, "the notifier's consumer reported an error");
                            // Not a tight loop while the brokers are away.
                            tokio::time::sleep(CONSUMER_ERROR_PAUSE).await;
                            continue;
                        }
                    },
                },
            };
            match self.handle(&msg, &mut shutdown, &mut pending).await {
                Handled::Done => self.commit(&msg),
                Handled::Stopped => break,
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(e) => warn!(error = %e, "committing the notifier's offsets at shutdown failed"),
        }
        info!("notifier stopped");
        Ok(())
    }

    /// Stores the notice's offset and commits it; a failure only means it is read again.
    fn commit(&self, msg: &OwnedMessage) {
        if let Err(e) = self
            .consumer
            .store_offset(msg.topic(), msg.partition(), msg.offset())
        {
            // Typically: the partition moved to another member meanwhile, which reads the
            // notice again (the same Message-ID).
            debug!(error = %e, partition = msg.partition(), offset = msg.offset(), "could not store the notifier's offset");
            return;
        }
        match self.consumer.commit_consumer_state(CommitMode::Async) {
            Ok(()) => {}
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(e) => {
                warn!(error = %e, "committing the notifier's offset failed; a later commit covers it")
            }
        }
    }

    async fn handle(
        &self,
        msg: &OwnedMessage,
        shutdown: &mut watch::Receiver<bool>,
        pending: &mut VecDeque<OwnedMessage>,
    ) -> Handled {
        let decoded = match msg.payload() {
            Some(bytes) => EndpointNotification::from_avro(bytes).map_err(|e| e.to_string()),
            None => Err("the record has no value".to_owned()),
        };
        let notice = match decoded {
            Ok(n) => n,
            Err(reason) => {
                // The reason names the schema problem, never field values.
                error!(
                    topic = %self.topic,
                    partition = msg.partition(),
                    offset = msg.offset(),
                    reason,
                    "skipping a notification record that does not decode"
                );
                self.finished("undecodable");
                return Handled::Done;
            }
        };
        let mut backoff = self.retry_initial;
        let mut paused = false;
        let handled = loop {
            match self.attempt(&notice, shutdown).await {
                Attempt::Finished => break Handled::Done,
                Attempt::Stopped => break Handled::Stopped,
                Attempt::Retry(cause) => {
                    if matches!(cause, RetryCause::Smtp(_)) {
                        self.attempted("failed");
                    }
                    warn!(
                        notification_id = %notice.id,
                        endpoint_id = %notice.endpoint_id,
                        error = %cause,
                        retry_in = ?backoff,
                        "could not send the owner e-mail; retrying"
                    );
                    if !paused {
                        self.pause_assignment();
                        paused = true;
                    }
                    if self.wait(backoff, shutdown, pending).await {
                        break Handled::Stopped;
                    }
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        };
        if paused {
            self.resume_assignment();
        }
        handled
    }

    /// Decides, composes and sends once.
    async fn attempt(
        &self,
        notice: &EndpointNotification,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Attempt {
        let endpoint = match self
            .table
            .get(&EndpointId::from(notice.endpoint_id.as_str()))
        {
            Ok(ep) => ep,
            Err(e) => return Attempt::Retry(RetryCause::Table(e)),
        };
        let account = match self
            .table
            .endpoints_of_account(&AccountId::from(notice.account_id.as_str()))
        {
            Ok(eps) => eps,
            Err(e) => return Attempt::Retry(RetryCause::Table(e)),
        };
        let (to, source) =
            match recipient::decide(notice, endpoint.as_ref(), &account, self.fallback.as_ref()) {
                Decision::Send { to, source } => (to, source),
                Decision::Skip(skip) => {
                    warn!(
                        notification_id = %notice.id,
                        endpoint_id = %notice.endpoint_id,
                        account_id = %notice.account_id,
                        skip = ?skip,
                        "not e-mailing this notice"
                    );
                    self.finished(skip.outcome());
                    return Attempt::Finished;
                }
            };
        let email = match message::compose(notice, &to, source, &self.letterhead, SystemTime::now())
        {
            Ok(email) => email,
            Err(e) => {
                error!(notification_id = %notice.id, error = %e, "could not build the owner e-mail; skipping it");
                self.finished("rejected");
                return Attempt::Finished;
            }
        };
        let bytes = email.formatted();
        let send = self
            .mailer
            .send(&self.letterhead.from.email, &to.email, &bytes);
        tokio::pin!(send);
        let mut stop = shutdown.clone();
        let result = tokio::select! {
            result = &mut send => result,
            () = stopped(&mut stop) => match tokio::time::timeout(STOP_GRACE, &mut send).await {
                Ok(result) => result,
                Err(_) => return Attempt::Stopped,
            },
        };
        match result {
            Ok(()) => {
                self.attempted("accepted");
                self.finished("sent");
                info!(
                    notification_id = %notice.id,
                    endpoint_id = %notice.endpoint_id,
                    recipient = source.as_str(),
                    "owner e-mailed: endpoint disabled"
                );
                Attempt::Finished
            }
            Err(e) if e.is_permanent() => {
                self.attempted("rejected");
                self.finished("rejected");
                error!(
                    notification_id = %notice.id,
                    endpoint_id = %notice.endpoint_id,
                    recipient = source.as_str(),
                    error = %RetryCause::Smtp(e),
                    "the SMTP server refused the owner e-mail for good; skipping it"
                );
                Attempt::Finished
            }
            Err(e) => Attempt::Retry(RetryCause::Smtp(e)),
        }
    }

    /// Waits out a backoff while keeping the consumer polled (so it stays in its group).
    /// Records that still arrive (from partitions assigned meanwhile) are kept in order and
    /// their partitions paused. True if shutdown came first.
    async fn wait(
        &self,
        backoff: Duration,
        shutdown: &mut watch::Receiver<bool>,
        pending: &mut VecDeque<OwnedMessage>,
    ) -> bool {
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = stopped(shutdown) => return true,
                () = &mut sleep => return false,
                received = self.consumer.recv() => match received {
                    Ok(m) => {
                        let mut tpl = TopicPartitionList::new();
                        tpl.add_partition(m.topic(), m.partition());
                        let _ = self.consumer.pause(&tpl);
                        pending.push_back(m.detach());
                    }
                    Err(e) => debug!(error = %e, "the notifier's consumer reported an error while waiting"),
                },
            }
        }
    }

    fn pause_assignment(&self) {
        if let Ok(assignment) = self.consumer.assignment()
            && let Err(e) = self.consumer.pause(&assignment)
        {
            debug!(error = %e, "pausing the notifier's partitions failed");
        }
    }

    fn resume_assignment(&self) {
        if let Ok(assignment) = self.consumer.assignment()
            && let Err(e) = self.consumer.resume(&assignment)
        {
            warn!(error = %e, "resuming the notifier's partitions failed");
        }
    }

    fn finished(&self, outcome: &str) {
        self.metrics
            .notifications
            .with_label_values(&[outcome])
            .inc();
    }

    fn attempted(&self, outcome: &str) {
        self.metrics
            .smtp_attempts
            .with_label_values(&[outcome])
            .inc();
    }
}

/// The notifier's consumer: its own group, offsets stored only when a notice is done and
/// committed by the notifier, from the beginning of the topic for a new group.
fn consumer_config(config: &Config, group_id: &str) -> ClientConfig {
    let mut c = crate::kafka::client_config(&config.kafka);
    c.set("group.id", group_id)
        .set("client.id", format!("{}-notify", config.kafka.client_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    c
}
