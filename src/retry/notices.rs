//! Writes the `endpoint.disabled` notices this instance owes to the notifications topic.
//!
//! The subscriptions table fills its outbox in the same atomic write that applies a
//! disabling this instance won (see [`crate::subscriptions::status`]); this task empties it
//! once each notice is durably on the topic. A crash in between leaves the notice in the
//! outbox, and the restarted process writes it: at least once, with a stable notice id that
//! mail and paging services dedupe on.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::lifecycle::stopped;
use crate::records::EndpointNotification;
use crate::subscriptions::SubscriptionTable;
use crate::telemetry::Metrics;

/// How often the outbox is looked at even when the table reports no change.
const RECHECK: Duration = Duration::from_secs(5);
/// How long to wait before writing a notice again after a failure.
const BACKOFF: Duration = Duration::from_secs(1);

/// Runs until `shutdown`: writes every owed notice, then waits for the table to change.
pub async fn write_owed_notices(
    table: Arc<SubscriptionTable>,
    producer: FutureProducer,
    topic: String,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match table.pending_notices() {
            Ok(pending) => {
                metrics.notices_pending.set(pending.len() as i64);
                for (id, bytes) in pending {
                    let key = match EndpointNotification::from_avro(&bytes) {
                        Ok(notice) => notice.endpoint_id,
                        Err(e) => {
                            // Written by this build's own encoder; a bug if it happens.
                            error!(notice_id = %id, error = %e, "an owed notice does not decode; writing it unkeyed");
                            String::new()
                        }
                    };
                    loop {
                        let record: FutureRecord<'_, [u8], [u8]> =
                            FutureRecord::to(&topic).key(key.as_bytes()).payload(&bytes);
                        match producer.send(record, Duration::from_secs(30)).await {
                            Ok(_) => break,
                            Err((e, _)) => {
                                warn!(notice_id = %id, error = %e, "writing a notice failed; retrying");
                                tokio::select! {
                                    () = tokio::time::sleep(BACKOFF) => {}
                                    () = stopped(&mut shutdown) => return,
                                }
                            }
                        }
                    }
                    info!(notice_id = %id, endpoint_id = %key, "endpoint.disabled notice written");
                    if let Err(e) = table.remove_notice(&id) {
                        // It stays owed and is written again (same id) after the next change.
                        warn!(notice_id = %id, error = %e, "cannot forget a written notice");
                    }
                }
                metrics
                    .notices_pending
                    .set(table.pending_notices().map(|p| p.len() as i64).unwrap_or(0));
            }
            Err(e) => warn!(error = %e, "cannot read the notice outbox"),
        }
        tokio::select! {
            () = table.changed() => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = stopped(&mut shutdown) => return,
        }
    }
}
