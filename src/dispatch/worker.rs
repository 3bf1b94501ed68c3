//! One endpoint's worker: its queue, batching (the pure [`policy`](crate::batch::policy)),
//! concurrency cap and rate limit, the send of each request, and carrying out the
//! [`plan`](crate::retry::plan) that follows it. A slow endpoint only ever occupies its own
//! worker: the dispatcher admits at most `delivery.endpoint_backlog` deliveries per endpoint,
//! and the worker publishes how fast it drains so intake can tell a slow endpoint (hand the
//! excess to a retry tier) from a briefly busy one (leave it in Kafka a moment).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, warn};

use crate::batch::policy::{BatchPolicy, Decision, decide};
use crate::batch::ratelimit::TokenBucket;
use crate::config::DeliveryConfig;
use crate::delivery::{
    DeadLetterReason, Delivery, DeliveryOutcome, DropReason, ErrorClass, SlowReason, batch_id,
    now_ms,
};
use crate::dispatch::classify::{AttemptResult, classify};
use crate::dispatch::{Entry, Shared};
use crate::event::batch_body;
use crate::ids::EndpointId;
use crate::records::{AttemptLine, Strings};
use crate::retry::handoff::{Disabling, Failure};
use crate::retry::{Plan, RetryAt, Verdict, plan};
use crate::sign::Signer;
use crate::subscriptions::Endpoint;

/// How long a worker with nothing to do stays around before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// An endpoint whose every send slot has held a request this long counts as slow (hanging).
const HANG_AFTER: Duration = Duration::from_secs(1);

/// An endpoint whose queue would take longer than this to drain at its own speed is slow:
/// what it cannot hold goes to a retry tier instead of holding its partition back.
const MAX_DRAIN: Duration = Duration::from_secs(5);

/// How many times the latency every endpoint sees now an endpoint's own latency must be to
/// count against it. When the machine is saturated every request is slow (hundreds in flight
/// on two cores take tens of milliseconds each); only an endpoint much slower than the rest
/// is the one holding its partition back.
const SLOWER_THAN_OTHERS: f64 = 5.0;

/// How often a worker with a queue looks at its speed again.
const PACE_CHECK: Duration = Duration::from_millis(250);

/// How often a worker re-reads its endpoint (URL, secrets, limits, status) from the table.
/// Reading it per request costs a RocksDB read and a decode; a change (a rotation, a
/// disable) takes effect within this long.
const ENDPOINT_REFRESH: Duration = Duration::from_secs(1);

/// What intake may know of a worker's queue without asking it.
#[derive(Debug, Default)]
pub struct Load {
    /// Deliveries admitted and not yet taken out to be sent (channel plus queue).
    pub(crate) queued: AtomicUsize,
    /// The worker's last verdict on its endpoint: failing, hanging, or too slow to drain
    /// its queue within [`MAX_DRAIN`] at its own speed.
    pub(crate) slow: AtomicBool,
    /// Set while a partition waits for this endpoint: the worker then says so (on
    /// [`Shared::room_tx`]) as soon as the partition may go on.
    pub(crate) awaited: AtomicBool,
}

/// The endpoint as last read from the table (None: deleted; Err: the read failed).
type Snapshot = Result<Option<Arc<Target>>, String>;

/// An endpoint as read, with its secrets keyed for signing.
struct Target {
    endpoint: Endpoint,
    signer: Signer,
}

impl Target {
    fn new(endpoint: Endpoint) -> Self {
        let signer = Signer::new(
            endpoint
                .secrets
                .iter()
                .map(|s| (&s.secret, s.expires_at_ms)),
        );
        Target { endpoint, signer }
    }
}

/// An endpoint's effective limits: its overrides over the configured defaults.
#[derive(Debug, Clone, PartialEq)]
struct Limits {
    concurrency: usize,
    rate_per_sec: f64,
    policy: BatchPolicy,
}

impl Limits {
    fn of(endpoint: Option<&Endpoint>, config: &DeliveryConfig) -> Self {
        let defaults = BatchPolicy {
            enabled: true,
            max_events: config.batch.max_events,
            max_bytes: config.batch.max_bytes,
            linger: config.batch.linger,
        };
        let Some(ep) = endpoint else {
            return Limits {
                concurrency: config.endpoint_concurrency as usize,
                rate_per_sec: config.endpoint_rate_limit,
                policy: defaults,
            };
        };
        let b = &ep.batching;
        Limits {
            concurrency: ep
                .max_concurrency
                .map_or(config.endpoint_concurrency as usize, |n| n.get() as usize),
            rate_per_sec: ep
                .rate_limit_per_sec
                .map_or(config.endpoint_rate_limit, |n| f64::from(n.get())),
            policy: BatchPolicy {
                enabled: b.enabled,
                max_events: b
                    .max_events
                    .map_or(defaults.max_events, |n| n.get() as usize),
                max_bytes: b.max_bytes.map_or(defaults.max_bytes, |n| n.get() as usize),
                linger: b
                    .linger_ms
                    .map_or(defaults.linger, |ms| Duration::from_millis(u64::from(ms))),
            },
        }
    }

    fn bucket(&self) -> Option<TokenBucket> {
        (self.rate_per_sec > 0.0)
            .then(|| TokenBucket::new(self.rate_per_sec, self.rate_per_sec.max(1.0)))
    }

    /// The most deliveries per second the limits allow, if they bound it.
    fn ceiling(&self) -> Option<f64> {
        let per_request = if self.policy.enabled {
            self.policy.max_events.max(1) as f64
        } else {
            1.0
        };
        (self.rate_per_sec > 0.0).then_some(self.rate_per_sec * per_request)
    }
}

/// How fast one endpoint can take deliveries, judged from its own latency and limits, not
/// from how fast its queue happened to drain: under a bulk import every queue drains slowly
/// because the whole machine is busy, and that is no reason to hand anything to a retry tier.
/// Pure; the caller passes the times.
#[derive(Debug, Default)]
struct Speed {
    /// The latest request latencies in seconds, a ring of [`Speed::SAMPLES`].
    recent: [f64; Speed::SAMPLES],
    /// How many of `recent` hold a sample.
    len: usize,
    /// Where the next sample goes.
    next: usize,
}

impl Speed {
    /// How many of the latest latencies the judgement looks at.
    const SAMPLES: usize = 9;

    fn observe(&mut self, latency: Duration) {
        self.recent[self.next] = latency.as_secs_f64();
        self.next = (self.next + 1) % Self::SAMPLES;
        self.len = (self.len + 1).min(Self::SAMPLES);
    }

    /// The endpoint's latency: the median of the latest requests. One slow request (a
    /// retransmitted packet, a pause of the whole machine) does not make an endpoint slow;
    /// most of the latest being slow does. (A mean moved by a fifth towards each sample,
    /// as before, let one 200 ms outlier among 5 ms answers mark a healthy endpoint slow on a
    /// saturated machine and shed its excess to a retry tier.)
    fn latency(&self) -> Option<f64> {
        let mut recent = self.recent;
        let recent = &mut recent[..self.len];
        recent.sort_unstable_by(f64::total_cmp);
        recent.get(recent.len() / 2).copied()
    }

    /// The latency to judge by: the median of the latest requests, or longer when every
    /// send slot has been held longer than that (`held`), so an endpoint that stops
    /// answering is judged before any request ends.
    fn judged_latency(&self, held: Option<Duration>) -> Option<f64> {
        match (self.latency(), held.map(|d| d.as_secs_f64())) {
            (Some(median), Some(held)) => Some(median.max(held)),
            (median, held) => median.or(held),
        }
    }

    /// How long `queued` deliveries take to drain: `concurrency` requests at a time, each
    /// lasting the endpoint's latency and carrying up to `per_request` deliveries, within the
    /// rate limit's `ceiling`. `None` while nothing is known.
    fn drain_time(
        &self,
        queued: usize,
        limits: &Limits,
        held: Option<Duration>,
    ) -> Option<Duration> {
        let latency = self.judged_latency(held);
        let per_request = if limits.policy.enabled {
            limits.policy.max_events.max(1) as f64
        } else {
            1.0
        };
        let by_latency =
            latency.map(|l| limits.concurrency.max(1) as f64 * per_request / l.max(1e-4));
        let rate = match (by_latency, limits.ceiling()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        if rate <= 0.0 {
            return Some(Duration::MAX);
        }
        Some(Duration::from_secs_f64((queued as f64 / rate).min(1e9)))
    }

    /// Why the endpoint is slow, if it is: every send slot has held a request for
    /// [`HANG_AFTER`] and that much longer than the others take (hanging); its own rate
    /// limit keeps its queue from draining within [`MAX_DRAIN`] (throttled); or it is much
    /// slower than the other endpoints are now (`reference` latency) and at that speed its
    /// queue would not drain in time (lagging).
    ///
    /// `held` is how long every slot has been held: the age of the youngest request in
    /// flight when all `concurrency` slots are in use, else `None`. The youngest, not the
    /// oldest: one request stuck behind a retransmitted SYN while the other slots turn over
    /// in milliseconds is no sign of a hanging endpoint.
    fn slowness(
        &self,
        queued: usize,
        limits: &Limits,
        held: Option<Duration>,
        reference: Option<Duration>,
    ) -> Option<SlowReason> {
        let reference = reference.map_or(0.0, |r| r.as_secs_f64());
        let much_slower = |latency: f64| latency >= SLOWER_THAN_OTHERS * reference;
        if held.is_some_and(|held| held >= HANG_AFTER && much_slower(held.as_secs_f64())) {
            return Some(SlowReason::Hanging);
        }
        if queued <= limits.concurrency {
            return None;
        }
        if limits
            .ceiling()
            .is_some_and(|c| queued as f64 / c.max(1e-9) > MAX_DRAIN.as_secs_f64())
        {
            return Some(SlowReason::Throttled);
        }
        let lagging = self.judged_latency(held).is_some_and(much_slower)
            && self
                .drain_time(queued, limits, held)
                .is_some_and(|t| t > MAX_DRAIN);
        lagging.then_some(SlowReason::Lagging)
    }
}

/// How long every send slot has been held: the age of the youngest request in flight when
/// `started` (when each request in flight started) fills all `concurrency` slots.
fn held(started: &[Instant], concurrency: usize, now: Instant) -> Option<Duration> {
    if started.len() < concurrency.max(1) {
        return None;
    }
    started.iter().max().map(|t| now.duration_since(*t))
}

struct Queued {
    delivery: Delivery,
    enqueued: Instant,
}

/// What a finished request tells its worker.
struct Done {
    /// False when the endpoint failed the request (a 2xx, or nothing sent, is true).
    ok: bool,
    started: Instant,
    /// How long the exchange took, when a request was made.
    latency: Option<Duration>,
}

pub(crate) struct Worker {
    id: EndpointId,
    rx: mpsc::UnboundedReceiver<Delivery>,
    load: Arc<Load>,
    shared: Arc<Shared>,
    registry: Arc<Mutex<HashMap<EndpointId, Entry>>>,
    queue: VecDeque<Queued>,
    in_flight: usize,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    last_failed: bool,
    /// Why the endpoint was last judged slow, if it was.
    slow: Option<SlowReason>,
    /// When each request in flight started (at most `concurrency` of them).
    started: Vec<Instant>,
    speed: Speed,
    limits: Limits,
    bucket: Option<TokenBucket>,
    loaded_at: Option<Instant>,
    endpoint: Snapshot,
    /// Set once the dispatcher closes: queued deliveries are dropped unsent.
    closing: bool,
}

impl Worker {
    pub(crate) fn new(
        id: EndpointId,
        rx: mpsc::UnboundedReceiver<Delivery>,
        load: Arc<Load>,
        shared: Arc<Shared>,
        registry: Arc<Mutex<HashMap<EndpointId, Entry>>>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let limits = Limits::of(None, &shared.config);
        Worker {
            id,
            rx,
            load,
            shared,
            registry,
            queue: VecDeque::new(),
            in_flight: 0,
            done_tx,
            done_rx,
            last_failed: false,
            slow: None,
            started: Vec::new(),
            speed: Speed::default(),
            bucket: limits.bucket(),
            limits,
            loaded_at: None,
            endpoint: Ok(None),
            closing: false,
        }
    }

    fn refresh(&mut self, now: Instant) {
        if self
            .loaded_at
            .is_some_and(|at| now.duration_since(at) < ENDPOINT_REFRESH)
        {
            return;
        }
        self.loaded_at = Some(now);
        self.endpoint = match self.shared.table.get(&self.id) {
            Ok(endpoint) => Ok(endpoint.map(|e| Arc::new(Target::new(e)))),
            Err(e) => Err(e.to_string()),
        };
        let current = self
            .endpoint
            .as_ref()
            .ok()
            .and_then(|e| e.as_deref())
            .map(|t| &t.endpoint);
        let limits = Limits::of(current, &self.shared.config);
        if limits != self.limits {
            self.bucket = limits.bucket();
            self.limits = limits;
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let wake = if self.closing {
                None
            } else {
                self.start_sends()
            };
            self.publish_load();
            let idle = self.queue.is_empty() && self.in_flight == 0;
            if self.closing && self.in_flight == 0 {
                self.leave();
                return;
            }
            tokio::select! {
                biased;
                Some(done) = self.done_rx.recv() => {
                    self.in_flight -= 1;
                    self.last_failed = !done.ok;
                    if let Some(i) = self.started.iter().position(|t| *t == done.started) {
                        self.started.swap_remove(i);
                    }
                    if let Some(latency) = done.latency {
                        self.speed.observe(latency);
                        self.shared.observe_latency(latency);
                    }
                }
                () = self.shared.closing.cancelled(), if !self.closing => self.close(),
                received = self.rx.recv() => match received {
                    Some(d) => self.enqueue(d),
                    // The registry dropped our sender: only happens when we removed it.
                    None => return,
                },
                () = sleep_until_opt(wake) => {}
                () = tokio::time::sleep(PACE_CHECK), if !self.queue.is_empty() => {}
                () = tokio::time::sleep(IDLE_EXIT), if idle => {
                    if self.try_exit() {
                        return;
                    }
                }
            }
        }
    }

    /// Tells intake how full and how slow this endpoint is.
    fn publish_load(&mut self) {
        let now = Instant::now();
        let held = held(&self.started, self.limits.concurrency, now);
        let queued = self.load.queued.load(Ordering::Acquire);
        let reason = if self.last_failed {
            Some(SlowReason::Failing)
        } else {
            self.speed
                .slowness(queued, &self.limits, held, self.shared.latency_reference())
        };
        if let Some(reason) = reason
            && self.slow != Some(reason)
        {
            self.shared
                .metrics
                .endpoints_slow
                .with_label_values(&[reason.as_str()])
                .inc();
            debug!(
                reason = reason.as_str(),
                queued,
                latency_ms = self.speed.latency().map(|l| l * 1e3),
                reference_ms = self
                    .shared
                    .latency_reference()
                    .map(|r| r.as_secs_f64() * 1e3),
                "endpoint judged slow: what does not fit its queue goes to a retry tier"
            );
        }
        self.slow = reason;
        let slow = reason.is_some();
        self.load.slow.store(slow, Ordering::Release);
        let backlog = self.shared.config.endpoint_backlog;
        if (slow || queued <= backlog - backlog / 4)
            && self.load.awaited.swap(false, Ordering::AcqRel)
        {
            let _ = self.shared.room_tx.send(self.id.clone());
        }
    }

    /// The dispatcher is closing (shutdown): drop what waits unsent; requests in flight
    /// finish. Dropped deliveries stay unsettled, so the partition's next owner sends them.
    fn close(&mut self) {
        self.closing = true;
        let mut dropped = self.queue.len();
        self.queue.clear();
        while let Ok(d) = self.rx.try_recv() {
            drop(d);
            dropped += 1;
        }
        self.load.queued.fetch_sub(dropped, Ordering::AcqRel);
        if dropped > 0 {
            debug!(
                dropped,
                "dropping unsent deliveries at shutdown; they stay uncommitted"
            );
        }
    }

    fn leave(&mut self) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.remove(&self.id);
    }

    /// Leaves the registry if nothing arrived meanwhile. Checked under the registry lock,
    /// which `submit` holds while sending.
    fn try_exit(&mut self) -> bool {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if !self.rx.is_empty() {
            return false;
        }
        registry.remove(&self.id);
        debug!("endpoint worker idle, exiting");
        true
    }

    fn enqueue(&mut self, delivery: Delivery) {
        if self.closing || delivery.is_stale() {
            // Stale: its partition's new owner sends it. Closing: it stays uncommitted.
            self.load.queued.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        self.queue.push_back(Queued {
            delivery,
            enqueued: Instant::now(),
        });
    }

    /// Starts as many requests as the limits allow; returns when to look again.
    fn start_sends(&mut self) -> Option<Instant> {
        let now = Instant::now();
        self.refresh(now);
        while self.in_flight < self.limits.concurrency {
            let mut stale = 0;
            while self.queue.front().is_some_and(|q| q.delivery.is_stale()) {
                self.queue.pop_front();
                stale += 1;
            }
            if stale > 0 {
                self.load.queued.fetch_sub(stale, Ordering::AcqRel);
            }
            let count = match self.next_batch(now) {
                Decision::Idle => return None,
                Decision::WaitUntil(at) => return Some(at),
                Decision::Send { count } => count,
            };
            if let Some(bucket) = self.bucket.as_mut()
                && let Err(wait) = bucket.try_take(now)
            {
                return Some(now + wait);
            }
            let batch: Vec<Delivery> = self
                .queue
                .drain(..count.min(self.queue.len()))
                .map(|q| q.delivery)
                .collect();
            self.load.queued.fetch_sub(batch.len(), Ordering::AcqRel);
            self.publish_load();
            self.in_flight += 1;
            self.started.push(now);
            let shared = self.shared.clone();
            let done = self.done_tx.clone();
            let endpoint = self.endpoint.clone();
            tokio::spawn(
                async move {
                    let (ok, latency) = send(&shared, endpoint, batch).await;
                    let _ = done.send(Done {
                        ok,
                        started: now,
                        latency,
                    });
                }
                .in_current_span(),
            );
        }
        None
    }

    /// Only first attempts read under one partition lease are batched together: a retry
    /// goes alone (its attempt number and history are its own), and one request never mixes
    /// partitions, so a revoke cancels whole requests.
    fn next_batch(&self, now: Instant) -> Decision {
        let Some(head) = self.queue.front() else {
            return Decision::Idle;
        };
        if !batchable(&head.delivery) {
            return Decision::Send { count: 1 };
        }
        let lease = head.delivery.lease();
        let batchable = self
            .queue
            .iter()
            .take(self.limits.policy.max_events.max(1))
            .take_while(|q| batchable(&q.delivery) && Arc::ptr_eq(q.delivery.lease(), lease))
            .map(|q| (q.delivery.body.len(), q.enqueued))
            .collect::<Vec<_>>();
        decide(&self.limits.policy, &batchable, now)
    }
}

/// Whether a delivery may share a request with others: a first attempt of one event that
/// intake read. A retry has its own attempt number and history; a requested delivery (a
/// test event, a retry, a replay) and a body that is already a batch go as they are.
fn batchable(d: &Delivery) -> bool {
    d.attempt == 1 && !d.requested && d.members.is_none()
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What the attempts log says about one request (or one decision made without a request).
struct LogEntry<'a> {
    endpoint: &'a EndpointId,
    account: &'a str,
    batch: &'a [Delivery],
    /// The `webhook-id` and body sent; `None` when nothing was sent.
    request: Option<(&'a str, &'a Bytes)>,
    status: Option<u16>,
    latency_ms: i64,
    snippet: Option<&'a str>,
    /// `None` on success.
    failure: Option<&'a Failure>,
    outcome: DeliveryOutcome,
    dead_letter: Option<DeadLetterReason>,
    next_at_ms: Option<i64>,
}

fn log(shared: &Shared, entry: LogEntry<'_>) {
    let Some(first) = entry.batch.first() else {
        return;
    };
    let (delivery_id, body) = match entry.request {
        // Bodies are JSON hookrelay wrote, so valid UTF-8: checked and borrowed.
        Some((id, body)) => (
            id,
            Some(match std::str::from_utf8(body) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(body),
            }),
        ),
        None => (first.id.as_str(), None),
    };
    // One delivery's events are borrowed; a batch's are gathered.
    let gathered: Option<(Vec<String>, Vec<String>)> = (entry.batch.len() > 1).then(|| {
        entry.batch.iter().map(Delivery::event_lists).fold(
            (Vec::new(), Vec::new()),
            |(mut ids, mut types), (i, t)| {
                ids.extend(i);
                types.extend(t);
                (ids, types)
            },
        )
    });
    let (event_ids, event_types) = match (&gathered, &first.members) {
        (Some((ids, types)), _) => (Strings::Many(ids), Strings::Many(types)),
        (None, Some(m)) => (Strings::Many(&m.event_ids), Strings::Many(&m.event_types)),
        (None, None) => (
            Strings::One(first.event_id.as_str()),
            Strings::One(&first.event_type),
        ),
    };
    let error = entry.failure.map(Failure::describe);
    let tier = shared.handoff.tier_of(first);
    shared.handoff.log_line(AttemptLine {
        delivery_id,
        endpoint_id: entry.endpoint.as_str(),
        account_id: entry.account,
        event_ids,
        attempt: first.attempt as i32,
        at_ms: now_ms(),
        outcome: entry.outcome.as_str(),
        status: entry.status.map(i32::from),
        latency_ms: entry.latency_ms,
        error: error.as_deref(),
        response_snippet: entry.snippet,
        tier: tier.as_deref(),
        event_types,
        batch: entry.batch.len() > 1 || first.members.is_some(),
        error_class: entry.failure.map(|f| f.class.as_str()),
        dead_letter_reason: entry.dead_letter.map(|r| r.as_str()),
        next_attempt_at_ms: entry.next_at_ms,
        request_body: body.as_deref(),
    });
}

/// Deliveries that must not be sent to `endpoint` as it is now: another account's (the id
/// was reused), a paused endpoint's, a disabled one's. Each is ended here; the rest return.
async fn gate(shared: &Shared, endpoint: &Endpoint, batch: Vec<Delivery>) -> Vec<Delivery> {
    let mut sendable = Vec::with_capacity(batch.len());
    for d in batch {
        let verdict = if d.account_id != endpoint.account_id {
            Err(Some(DeadLetterReason::AccountMismatch))
        } else if !endpoint.enabled {
            Err(None)
        } else if endpoint.breaker_disabled() {
            Err(Some(DeadLetterReason::EndpointDisabled))
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => sendable.push(d),
            Err(Some(reason)) => {
                if reason == DeadLetterReason::AccountMismatch {
                    warn!(delivery_id = %d.id, endpoint_id = %endpoint.id, "endpoint now belongs to another account; dead-lettering instead of sending");
                }
                shared
                    .handoff
                    .log_decision(&d, DeliveryOutcome::DeadLettered, Some(reason));
                Box::pin(shared.handoff.dead_letter(d, reason, None)).await;
            }
            Err(None) => shared.handoff.drop_delivery(d, DropReason::EndpointPaused),
        }
    }
    sendable
}

/// Sends one request carrying `batch` (one delivery or several read under one lease) and
/// carries out what follows. Returns whether the endpoint took it (true when nothing was
/// sent) and how long the exchange took, when there was one.
async fn send(
    shared: &Shared,
    endpoint: Snapshot,
    batch: Vec<Delivery>,
) -> (bool, Option<Duration>) {
    match exchange(shared, endpoint, batch).await {
        Sent::Nothing => (true, None),
        Sent::Answered { ok, latency } => (ok, Some(latency)),
    }
}

/// What one [`exchange`] came to.
enum Sent {
    /// No request was made (the endpoint is gone or paused, the partition was revoked…).
    Nothing,
    Answered {
        ok: bool,
        latency: Duration,
    },
}

async fn exchange(shared: &Shared, target: Snapshot, batch: Vec<Delivery>) -> Sent {
    let target = match target {
        Ok(Some(target)) => target,
        Ok(None) => {
            for d in batch {
                shared.handoff.drop_delivery(d, DropReason::EndpointDeleted);
            }
            return Sent::Nothing;
        }
        Err(e) => {
            // The table cannot be read: retry later, as for any failure not the receiver's.
            warn!(error = %e, "cannot read the endpoint; scheduling a retry");
            let failure = Failure::local(ErrorClass::Other);
            for d in batch {
                let attempt = d.attempt;
                let next = plan(
                    Verdict::Failed {
                        class: ErrorClass::Other,
                        not_before: None,
                    },
                    attempt,
                    &shared.schedule,
                    crate::retry::breaker::Trip::Closed {
                        consecutive_failures: 0,
                    },
                    // Not the endpoint's fault: running out of retries never disables it.
                    true,
                );
                match next {
                    Plan::Retry(at) => Box::pin(shared.handoff.retry(d, at, &failure)).await,
                    _ => {
                        Box::pin(shared.handoff.dead_letter_after(
                            d,
                            DeadLetterReason::RetriesExhausted,
                            &failure,
                        ))
                        .await
                    }
                }
            }
            return Sent::Nothing;
        }
    };
    let endpoint = &target.endpoint;
    let batch = gate(shared, endpoint, batch).await;
    let Some(first) = batch.first() else {
        return Sent::Nothing;
    };
    let lease = first.lease().clone();
    let attempt = first.attempt;

    let now = now_ms();
    let (webhook_id, body) = if batch.len() == 1 {
        (first.id.clone(), first.body.clone())
    } else {
        let id = batch_id(batch.iter().map(|d| d.id.as_str()));
        let bodies: Vec<&[u8]> = batch.iter().map(|d| d.body.as_ref()).collect();
        let created = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        (id.clone(), Bytes::from(batch_body(&id, created, &bodies)))
    };
    let (result, detail, snippet, latency) = match target.signer.sign(&webhook_id, now, &body) {
        Err(e) => {
            warn!(endpoint_id = %endpoint.id, error = %e, "cannot sign the request");
            (
                AttemptResult::NoResponse(ErrorClass::Signing),
                Some(e.to_string()),
                None,
                Duration::ZERO,
            )
        }
        Ok(headers) => {
            shared.metrics.batch_size.observe(batch.len() as f64);
            let exchange = tokio::select! {
                exchange = shared.http.post(&endpoint.url, headers, body.clone()) => exchange,
                // The partition was revoked or the drain timed out (which ends every lease):
                // the request is abandoned and its deliveries stay unsettled for whoever
                // reads them next.
                () = lease.revoked() => return Sent::Nothing,
            };
            shared
                .metrics
                .request_duration
                .observe(exchange.latency.as_secs_f64());
            (
                exchange.result,
                exchange.detail,
                exchange.snippet,
                exchange.latency,
            )
        }
    };
    if lease.is_revoked() {
        // Its new owner sends it again: no retry record, no breaker count from here.
        return Sent::Nothing;
    }
    let verdict = classify(&result, SystemTime::now());
    let failure = match verdict {
        Verdict::Delivered => None,
        Verdict::Gone => Some(ErrorClass::Http4xx),
        Verdict::Failed { class, .. } => Some(class),
    }
    .map(|class| Failure {
        status: result.status(),
        class,
        not_before: match verdict {
            Verdict::Failed { not_before, .. } => not_before,
            _ => None,
        },
        latency_ms: latency.as_millis() as i64,
        snippet: snippet.clone(),
    });
    shared.metrics.attempt(failure.as_ref().map(|f| f.class));
    let request = Some((webhook_id.as_str(), &body));
    let account = endpoint.account_id.as_str();

    let latency_ms = latency.as_millis() as i64;
    let Some(failure) = failure else {
        shared.breaker().record_success(&endpoint.id);
        log(
            shared,
            LogEntry {
                endpoint: &endpoint.id,
                account,
                batch: &batch,
                request,
                status: result.status(),
                latency_ms,
                snippet: snippet.as_deref(),
                failure: None,
                outcome: DeliveryOutcome::Delivered,
                dead_letter: None,
                next_at_ms: None,
            },
        );
        shared.handoff.delivered(batch);
        return Sent::Answered { ok: true, latency };
    };
    if let Some(detail) = &detail {
        debug!(endpoint_id = %endpoint.id, error = %detail, class = failure.class.as_str(), "attempt failed");
    }
    let trip = shared
        .breaker()
        .record_failure(&endpoint.id, endpoint.status_epoch());
    let plan = plan(verdict, attempt, &shared.schedule, trip, first.requested);
    let entry = |batch, outcome, dead_letter, next_at_ms| LogEntry {
        endpoint: &endpoint.id,
        account,
        batch,
        request,
        status: failure.status,
        latency_ms,
        snippet: failure.snippet.as_deref(),
        failure: Some(&failure),
        outcome,
        dead_letter,
        next_at_ms,
    };
    let (retry_at, dead_letter): (Option<RetryAt>, Option<DeadLetterReason>) = match plan {
        Plan::Delivered => (None, None),
        Plan::Retry(at) => (Some(at), None),
        Plan::DeadLetter(reason) => (None, Some(reason)),
        Plan::Disable {
            reason,
            dead_letter,
            otherwise,
        } => {
            let disabling = Box::pin(shared.handoff.disable(endpoint, reason, &failure)).await;
            shared.breaker().forget(&endpoint.id);
            match (disabling, otherwise) {
                (Disabling::Deleted, _) => {
                    for d in batch {
                        shared.handoff.drop_delivery(d, DropReason::EndpointDeleted);
                    }
                    return Sent::Answered { ok: false, latency };
                }
                (Disabling::StillEnabled, Some(at)) => (Some(at), None),
                // Not disabled after all, and no retry left: it ran out of retries.
                (Disabling::StillEnabled, None)
                    if reason == crate::delivery::DisableReason::ConsecutiveFailures =>
                {
                    (None, Some(DeadLetterReason::RetriesExhausted))
                }
                (Disabling::Disabled | Disabling::StillEnabled, _) => (None, Some(dead_letter)),
            }
        }
    };
    match (retry_at, dead_letter) {
        (Some(at), _) => {
            log(
                shared,
                entry(
                    &batch,
                    DeliveryOutcome::RetryScheduled,
                    None,
                    Some(now_ms() + at.delay.as_millis() as i64),
                ),
            );
            for d in batch {
                Box::pin(shared.handoff.retry(d, at, &failure)).await;
            }
        }
        (None, Some(reason)) => {
            log(
                shared,
                entry(&batch, DeliveryOutcome::DeadLettered, Some(reason), None),
            );
            for d in batch {
                Box::pin(shared.handoff.dead_letter_after(d, reason, &failure)).await;
            }
        }
        (None, None) => {}
    }
    Sent::Answered { ok: false, latency }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: usize, rate: f64, batching: bool) -> Limits {
        let config = crate::config::Config::load_from(None, &[]).expect("defaults");
        let mut l = Limits::of(None, &config.delivery);
        l.concurrency = concurrency;
        l.rate_per_sec = rate;
        l.policy.enabled = batching;
        l
    }

    #[test]
    fn speed_comes_from_latency_and_limits_not_from_how_fast_the_queue_drained() {
        let mut speed = Speed::default();
        let unbatched = limits(8, 0.0, false);
        assert_eq!(
            speed.drain_time(1000, &unbatched, None),
            None,
            "nothing known yet"
        );
        // A healthy endpoint: 10 ms, 8 at a time: 800/s, 1,000 drain in 1.25 s.
        speed.observe(Duration::from_millis(10));
        let t = speed.drain_time(1000, &unbatched, None).expect("known");
        assert!((1.2..1.3).contains(&t.as_secs_f64()), "{t:?}");
        // A request in flight for 2 s bounds the latency from below: slow before it ends.
        let t = speed
            .drain_time(1000, &unbatched, Some(Duration::from_secs(2)))
            .expect("known");
        assert!(t > MAX_DRAIN, "{t:?}");
        // Its own rate limit bounds it too: 1 request/s.
        let throttled = limits(8, 1.0, false);
        assert_eq!(
            speed.drain_time(300, &throttled, None),
            Some(Duration::from_secs(300))
        );
        // Batches carry up to max_events per request.
        let batched = limits(8, 0.0, true);
        let t = speed.drain_time(1000, &batched, None).expect("known");
        assert!(t < Duration::from_millis(20), "{t:?}");
    }

    #[test]
    fn slow_means_slower_than_the_others_or_held_back_by_its_own_limit() {
        let ms = Duration::from_millis;
        let unbatched = limits(8, 0.0, false);
        // Saturated machine: every request takes 60 ms. Full queue, but so is everyone's.
        let mut busy = Speed::default();
        busy.observe(ms(60));
        assert_eq!(
            busy.slowness(1000, &unbatched, Some(ms(70)), Some(ms(60))),
            None
        );
        // The same endpoint at 2 s while the others take 60 ms is slow.
        let mut slow = Speed::default();
        slow.observe(Duration::from_secs(2));
        assert_eq!(
            slow.slowness(1000, &unbatched, None, Some(ms(60))),
            Some(SlowReason::Lagging)
        );
        // Hanging: every slot held for over a second, far longer than the others.
        let fresh = Speed::default();
        assert_eq!(
            fresh.slowness(5, &unbatched, Some(ms(1500)), Some(ms(10))),
            Some(SlowReason::Hanging)
        );
        assert_eq!(
            fresh.slowness(5, &unbatched, Some(ms(500)), Some(ms(10))),
            None
        );
        // Throttled by its own limit (1 request/s): slow however fast it answers.
        let mut quick = Speed::default();
        quick.observe(ms(1));
        assert_eq!(
            quick.slowness(300, &limits(8, 1.0, false), None, Some(ms(1))),
            Some(SlowReason::Throttled)
        );
        // A short queue is never a reason.
        assert_eq!(slow.slowness(3, &unbatched, None, Some(ms(60))), None);
    }

    #[test]
    fn one_slow_request_does_not_make_a_healthy_endpoint_slow() {
        let ms = Duration::from_millis;
        let few_slots = limits(2, 0.0, false);
        let mut speed = Speed::default();
        for _ in 0..8 {
            speed.observe(ms(5));
        }
        // A retransmitted packet: one answer after 200 ms among 5 ms ones, a full queue.
        speed.observe(ms(200));
        assert_eq!(speed.slowness(1000, &few_slots, None, Some(ms(5))), None);
        // Most of the latest answers slow: it is slow.
        for _ in 0..4 {
            speed.observe(ms(200));
        }
        assert_eq!(
            speed.slowness(1000, &few_slots, None, Some(ms(5))),
            Some(SlowReason::Lagging)
        );
        // And fast again once most of the latest are fast.
        for _ in 0..5 {
            speed.observe(ms(5));
        }
        assert_eq!(speed.slowness(1000, &few_slots, None, Some(ms(5))), None);
    }

    #[test]
    fn only_every_slot_held_long_counts_as_hanging() {
        let ms = Duration::from_millis;
        let now = Instant::now();
        let ago = |d| now.checked_sub(d).expect("a monotonic clock this old");
        // One request stuck for 1.2 s (a retransmitted SYN) while the others turn over.
        let one_stuck = [ago(ms(1200)), ago(ms(3)), ago(ms(1))];
        assert_eq!(held(&one_stuck, 3, now), Some(ms(1)));
        // Free slots: nothing is held.
        assert_eq!(held(&one_stuck, 4, now), None);
        // Every slot held for over a second.
        let all_stuck = [ago(ms(1500)), ago(ms(1200))];
        assert_eq!(held(&all_stuck, 2, now), Some(ms(1200)));
        let unbatched = limits(2, 0.0, false);
        let mut speed = Speed::default();
        speed.observe(ms(5));
        assert_eq!(
            speed.slowness(10, &unbatched, held(&one_stuck, 3, now), Some(ms(5))),
            None
        );
        assert_eq!(
            speed.slowness(10, &unbatched, held(&all_stuck, 2, now), Some(ms(5))),
            Some(SlowReason::Hanging)
        );
    }

    #[test]
    fn the_ceiling_counts_events_per_request_when_batching() {
        let config = crate::config::Config::load_from(None, &[]).expect("defaults");
        let mut limits = Limits::of(None, &config.delivery);
        limits.rate_per_sec = 2.0;
        assert_eq!(
            limits.ceiling(),
            Some(2.0 * config.delivery.batch.max_events as f64)
        );
        limits.policy.enabled = false;
        assert_eq!(limits.ceiling(), Some(2.0));
        limits.rate_per_sec = 0.0;
        assert_eq!(limits.ceiling(), None);
    }
}
