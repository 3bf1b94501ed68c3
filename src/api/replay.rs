//! Replaying dead letters: an endpoint's records on `webhook-dlq` written in a time range
//! (optionally of one reason) are written again to the requests topic, each keeping its
//! delivery id (the `webhook-id` receivers dedupe on), at most `max` of them.
//!
//! A replay runs in the background on the instance that started it, which keeps its
//! progress. It reads the dead-letter partitions from the offset of the range's start time
//! up to the end each had when the replay started, so letters of replayed deliveries that
//! fail again are not read back in a loop.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::delivery::{DeadLetterReason, now_ms};
use crate::kafka::assign::{PartitionsError, retry_transient, topic_partitions};
use crate::records::DeliveryEnvelope;
use crate::subscriptions::Endpoint;

use super::auth::Caller;
use super::deliveries::{Redelivery, enqueue};
use super::endpoints::{ApiErrors, lookup, require_deliverable};
use super::error::ApiError;
use super::extract::ApiJson;
use super::model::{ReplayList, ReplayRequest, ReplayState, ReplayView};
use super::{ApiState, parse_time, rfc3339};

/// Finished replays kept for their progress to be read, per instance.
const KEEP_FINISHED: usize = 1_000;
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the dead-letter topic may stay silent before a replay gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A partition is done once its records are this far past the range's end (records are
/// written in about time order; this allows for producers' clocks).
const PAST_RANGE_SLACK_MS: i64 = 60_000;
const UNJOINED_GROUP: &str = "hookrelay-replay-unjoined";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("Kafka {action} failed on the dead-letter topic")]
    Kafka {
        action: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("the dead-letter topic {0} does not exist")]
    TopicMissing(String),
    #[error("the dead-letter topic sent nothing for {0:?}")]
    Silent(Duration),
    #[error("writing a delivery to the requests topic failed")]
    Enqueue,
    #[error("the replay task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// What to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaySpec {
    pub since_ms: i64,
    pub until_ms: i64,
    pub reason: Option<String>,
    pub max: u32,
}

#[derive(Clone, Debug, Default)]
struct Progress {
    scanned: u64,
    matched: u64,
    replayed: u64,
    duplicates: u64,
    capped: bool,
    resume_since_ms: Option<i64>,
    error: Option<String>,
    finished_at_ms: Option<i64>,
}

/// One replay.
pub struct Job {
    id: String,
    endpoint_id: String,
    account_id: String,
    spec: ReplaySpec,
    started_at_ms: i64,
    progress: Mutex<Progress>,
}

impl Job {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> bool {
        self.progress().finished_at_ms.is_none()
    }

    pub fn view(&self) -> ReplayView {
        let p = self.progress().clone();
        ReplayView {
            id: self.id.clone(),
            endpoint_id: self.endpoint_id.clone(),
            state: match (&p.finished_at_ms, &p.error) {
                (None, _) => ReplayState::Running,
                (Some(_), None) => ReplayState::Done,
                (Some(_), Some(_)) => ReplayState::Failed,
            },
            since: rfc3339(self.spec.since_ms),
            until: rfc3339(self.spec.until_ms),
            reason: self.spec.reason.clone(),
            max: self.spec.max,
            scanned: p.scanned,
            matched: p.matched,
            replayed: p.replayed,
            duplicates: p.duplicates,
            capped: p.capped,
            resume_since: p.resume_since_ms.map(rfc3339),
            error: p.error,
            started_at: rfc3339(self.started_at_ms),
            finished_at: p.finished_at_ms.map(rfc3339),
        }
    }
}

/// The replays of this instance.
#[derive(Default)]
pub struct Replays {
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
}

impl Replays {
    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs().get(id).cloned()
    }

    fn of_endpoint(&self, endpoint: &str) -> Vec<Arc<Job>> {
        let mut jobs: Vec<Arc<Job>> = self
            .jobs()
            .values()
            .filter(|j| j.endpoint_id == endpoint)
            .cloned()
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.started_at_ms));
        jobs
    }

    /// Registers a job unless `running_max` are running; forgets the oldest finished ones.
    fn admit(&self, job: Arc<Job>, running_max: usize) -> Result<(), ApiError> {
        let mut jobs = self.jobs();
        if jobs.values().filter(|j| j.running()).count() >= running_max {
            return Err(ApiError::TooMany {
                message: "too many replays are running on this instance; retry when one finishes"
                    .to_owned(),
                retry_after_secs: 10,
            });
        }
        if jobs.len() >= KEEP_FINISHED {
            let mut finished: Vec<(i64, String)> = jobs
                .values()
                .filter(|j| !j.running())
                .map(|j| (j.started_at_ms, j.id.clone()))
                .collect();
            finished.sort();
            for (_, id) in finished.iter().take(jobs.len() + 1 - KEEP_FINISHED) {
                jobs.remove(id);
            }
        }
        jobs.insert(job.id.clone(), job);
        Ok(())
    }
}

/// Starts a replay of `endpoint`'s dead letters and returns its first view.
pub fn start_job(
    state: &ApiState,
    endpoint: &Endpoint,
    spec: ReplaySpec,
) -> Result<ReplayView, ApiError> {
    let job = Arc::new(Job {
        id: format!("rpl_{}", hex::encode(rand::random::<[u8; 12]>())),
        endpoint_id: endpoint.id.to_string(),
        account_id: endpoint.account_id.to_string(),
        spec,
        started_at_ms: now_ms(),
        progress: Mutex::new(Progress::default()),
    });
    state
        .replays
        .admit(Arc::clone(&job), state.settings.replays_running_max)?;
    tracing::info!(replay_id = %job.id, endpoint_id = %job.endpoint_id, since_ms = job.spec.since_ms, until_ms = job.spec.until_ms, "replay started");
    let view = job.view();
    let state = state.clone();
    tokio::spawn(async move {
        let result = run(&state, &job).await;
        let mut p = job.progress();
        if let Err(e) = &result {
            tracing::warn!(replay_id = %job.id, error = %crate::telemetry::ErrorChain(e), "replay failed");
            p.error = Some(e.to_string());
        }
        p.finished_at_ms = Some(now_ms());
        tracing::info!(replay_id = %job.id, replayed = p.replayed, matched = p.matched, capped = p.capped, "replay finished");
    });
    Ok(view)
}

async fn run(state: &ApiState, job: &Job) -> Result<(), ReplayError> {
    let topic = state.settings.dead_letter_topic.clone();
    let mut client = state.client.clone();
    client
        .set("group.id", UNJOINED_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = client.create().map_err(|source| ReplayError::Kafka {
        action: "consumer creation",
        source,
    })?;
    let consumer = Arc::new(consumer);
    let since = job.spec.since_ms;
    let ends = {
        let consumer = Arc::clone(&consumer);
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || assign_range(&consumer, &topic, since)).await??
    };
    let mut remaining = ends;
    let mut seen: HashSet<String> = HashSet::new();
    while !remaining.is_empty() {
        let message = match tokio::time::timeout(READ_TIMEOUT, consumer.recv()).await {
            Err(_) => return Err(ReplayError::Silent(READ_TIMEOUT)),
            Ok(Err(KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
                continue;
            }
            Ok(Err(source)) => {
                return Err(ReplayError::Kafka {
                    action: "read",
                    source,
                });
            }
            Ok(Ok(m)) => m,
        };
        let partition = message.partition();
        let Some(&end) = remaining.get(&partition) else {
            continue;
        };
        if message.offset() >= end {
            remaining.remove(&partition);
            continue;
        }
        if message.offset() + 1 >= end {
            remaining.remove(&partition);
        }
        job.progress().scanned += 1;
        if message.key() != Some(job.endpoint_id.as_bytes()) {
            continue;
        }
        let at = message.timestamp().to_millis().unwrap_or(0);
        if at > job.spec.until_ms {
            if at > job.spec.until_ms + PAST_RANGE_SLACK_MS {
                remaining.remove(&partition);
            }
            continue;
        }
        if at < since {
            continue;
        }
        let Some(mut envelope) = message
            .payload()
            .and_then(|p| DeliveryEnvelope::from_avro(p).ok())
        else {
            continue;
        };
        if envelope.account_id != job.account_id
            || job
                .spec
                .reason
                .as_ref()
                .is_some_and(|r| envelope.dead_letter_reason.as_ref() != Some(r))
        {
            continue;
        }
        job.progress().matched += 1;
        if !seen.insert(envelope.delivery_id.clone()) {
            job.progress().duplicates += 1;
            continue;
        }
        {
            let mut p = job.progress();
            if p.replayed >= u64::from(job.spec.max) {
                p.capped = true;
                p.resume_since_ms = Some(at);
                return Ok(());
            }
        }
        envelope.due_at_ms = now_ms();
        envelope.dead_letter_reason = None;
        enqueue(state, &envelope, Redelivery::Replay)
            .await
            .map_err(|_| ReplayError::Enqueue)?;
        job.progress().replayed += 1;
    }
    Ok(())
}

/// Assigns every partition of `topic` from its first record at or after `since_ms`;
/// returns the end offset (high watermark now) of each partition that has records to read.
fn assign_range(
    consumer: &StreamConsumer,
    topic: &str,
    since_ms: i64,
) -> Result<BTreeMap<i32, i64>, ReplayError> {
    let kafka = |action| move |source| ReplayError::Kafka { action, source };
    let partitions = topic_partitions(consumer, topic, METADATA_TIMEOUT).map_err(|e| match e {
        PartitionsError::Kafka(source) => kafka("metadata request")(source),
        PartitionsError::Missing { .. } => ReplayError::TopicMissing(topic.to_owned()),
    })?;
    let mut wanted = TopicPartitionList::new();
    for &p in &partitions {
        wanted
            .add_partition_offset(topic, p, Offset::Offset(since_ms.max(0)))
            .map_err(kafka("assignment"))?;
    }
    let starts = consumer
        .offsets_for_times(wanted, METADATA_TIMEOUT)
        .map_err(kafka("offsets-for-times request"))?;
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for el in starts.elements() {
        let (_, high) =
            retry_transient(|| consumer.fetch_watermarks(topic, el.partition(), METADATA_TIMEOUT))
                .map_err(kafka("watermark request"))?;
        let Offset::Offset(start) = el.offset() else {
            // No record at or after the start time.
            continue;
        };
        if start < high {
            ends.insert(el.partition(), high);
            assignment
                .add_partition_offset(topic, el.partition(), Offset::Offset(start))
                .map_err(kafka("assignment"))?;
        }
    }
    consumer.assign(&assignment).map_err(kafka("assignment"))?;
    Ok(ends)
}

#[utoipa::path(
    post,
    path = "/v1/endpoints/{id}/replays",
    operation_id = "start_replay",
    tag = "deliveries",
    summary = "Replay dead letters",
    description = "Re-sends the endpoint's deliveries that were dead-lettered between `since` and `until` (optionally only of one `reason`), at most `max`, each with its original webhook-id. Runs in the background: follow it with GET /v1/replays/{replay_id} on the same instance.",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    request_body = ReplayRequest,
    responses((status = 202, description = "Started", body = ReplayView), ApiErrors),
    security(("bearer" = []))
)]
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayView>), ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    let since_ms = parse_time("since", &body.since)?;
    let until_ms = match &body.until {
        Some(t) => parse_time("until", t)?,
        None => now_ms(),
    };
    if since_ms > until_ms {
        return Err(ApiError::bad("since", "since: must not be after until"));
    }
    if let Some(r) = &body.reason
        && !DeadLetterReason::ALL
            .iter()
            .any(|known| known.as_str() == r)
    {
        return Err(ApiError::bad(
            "reason",
            format!(
                "reason: one of {}",
                DeadLetterReason::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let ceiling = state.settings.replay_max;
    let max = match body.max {
        None => ceiling,
        Some(m) if (1..=ceiling).contains(&m) => m,
        Some(_) => {
            return Err(ApiError::bad("max", format!("max: must be 1 to {ceiling}")));
        }
    };
    require_deliverable(&endpoint)?;
    let view = start_job(
        &state,
        &endpoint,
        ReplaySpec {
            since_ms,
            until_ms,
            reason: body.reason,
            max,
        },
    )?;
    tracing::info!(replay_id = %view.id, key_id = %caller.key_id, "replay requested");
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/v1/endpoints/{id}/replays",
    operation_id = "list_replays",
    tag = "deliveries",
    summary = "The endpoint's replays on this instance",
    params(("id" = String, Path, description = "The endpoint id (ep_…)")),
    responses((status = 200, description = "Newest first", body = ReplayList), ApiErrors),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReplayList>, ApiError> {
    let endpoint = lookup(&state, &caller, &id)?;
    Ok(Json(ReplayList {
        data: state
            .replays
            .of_endpoint(endpoint.id.as_str())
            .iter()
            .map(|j| j.view())
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/replays/{replay_id}",
    operation_id = "get_replay",
    tag = "deliveries",
    summary = "A replay's progress",
    params(("replay_id" = String, Path, description = "The replay id (rpl_…)")),
    responses((status = 200, description = "The replay", body = ReplayView), ApiErrors),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(replay_id): Path<String>,
) -> Result<Json<ReplayView>, ApiError> {
    let job = state
        .replays
        .get(&replay_id)
        .filter(|j| caller.may_access_account(&crate::ids::AccountId::new(j.account_id.clone())))
        .ok_or(ApiError::NotFound { what: "replay" })?;
    Ok(Json(job.view()))
}
