//! Per-endpoint queues: one worker task per endpoint with deliveries waiting. It batches
//! what piles up (the pure [`policy`](super::policy)), enforces the endpoint's concurrency
//! cap and rate limit, overflows a backlog past its bound to the first retry tier, and
//! exits when idle. A slow endpoint only ever occupies its own worker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info_span};

use crate::batch::policy::{BatchPolicy, Decision, decide};
use crate::batch::ratelimit::TokenBucket;
use crate::config::DeliveryConfig;
use crate::delivery::{Delivery, batch_id, now_ms};
use crate::dispatch::classify::{Outcome, classify};
use crate::dispatch::client::HttpSender;
use crate::event::batch_body;
use crate::ids::{EndpointId, Secret};
use crate::retry::handoff::{Failure, Handoff};
use crate::sign::SignedHeaders;
use crate::subscriptions::{Endpoint, SubscriptionTable};
use crate::telemetry::Metrics;

/// How long a worker with nothing to do stays around before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// An endpoint whose every send slot has been busy this long without a response counts as
/// slow (hanging), as does one whose last request failed.
const SLOW_AFTER: Duration = Duration::from_secs(1);

/// Everything a send needs, shared by all workers.
pub struct Shared {
    pub http: HttpSender,
    pub table: Arc<SubscriptionTable>,
    pub handoff: Arc<Handoff>,
    pub metrics: Metrics,
    pub config: DeliveryConfig,
}

/// Routes deliveries to their endpoint's worker, starting one when needed.
pub struct Dispatcher {
    workers: Arc<Mutex<HashMap<EndpointId, mpsc::UnboundedSender<Delivery>>>>,
    shared: Arc<Shared>,
}

impl Dispatcher {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            workers: Arc::new(Mutex::new(HashMap::new())),
            shared,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Queues a delivery for its endpoint.
    pub fn submit(&self, delivery: Delivery) {
        self.shared.metrics.in_flight.inc();
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let id = delivery.endpoint_id.clone();
        let delivery = match workers.get(&id) {
            // Sent under the lock: a worker only exits after checking, under the same lock,
            // that its channel is empty, so nothing is lost between the two.
            Some(tx) => match tx.send(delivery) {
                Ok(()) => return,
                Err(mpsc::error::SendError(d)) => d,
            },
            None => delivery,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // A fresh channel with its receiver alive cannot be closed.
        let _ = tx.send(delivery);
        workers.insert(id.clone(), tx);
        let worker = Worker::new(id.clone(), rx, self.shared.clone(), self.workers.clone());
        tokio::spawn(
            worker
                .run()
                .instrument(info_span!("endpoint", endpoint_id = %id)),
        );
    }

    /// Stops every endpoint worker (what they still queue is dropped unsettled, so it is read
    /// again) and waits up to `timeout` for requests in flight to finish, so nothing of the
    /// dispatcher outlives the caller's shutdown.
    pub async fn close(&self, timeout: Duration) {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let deadline = Instant::now() + timeout;
        // Workers and request tasks each hold a clone of `shared`.
        while Arc::strong_count(&self.shared) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Endpoints with a live worker.
    pub fn active_endpoints(&self) -> usize {
        self.workers.lock().map(|w| w.len()).unwrap_or(0)
    }
}

struct Queued {
    delivery: Delivery,
    enqueued: Instant,
}

struct Worker {
    id: EndpointId,
    rx: mpsc::UnboundedReceiver<Delivery>,
    shared: Arc<Shared>,
    registry: Arc<Mutex<HashMap<EndpointId, mpsc::UnboundedSender<Delivery>>>>,
    queue: VecDeque<Queued>,
    in_flight: usize,
    /// Completed requests report here: true when the endpoint answered 2xx.
    done_tx: mpsc::UnboundedSender<bool>,
    done_rx: mpsc::UnboundedReceiver<bool>,
    last_failed: bool,
    last_completion: Instant,
    limits: Limits,
    bucket: Option<TokenBucket>,
    limits_loaded: Option<Instant>,
    /// The endpoint as last read from the table (None: deleted; Err: the read failed).
    endpoint: Snapshot,
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
}

/// How often a worker re-reads its endpoint (URL, secrets, limits, enabled) from the table.
/// Reading it per request costs a RocksDB read and a decode; a change (a rotation, a
/// disable) takes effect within this long.
const ENDPOINT_REFRESH: Duration = Duration::from_secs(1);

type Snapshot = Result<Option<Arc<Endpoint>>, String>;

impl Worker {
    fn new(
        id: EndpointId,
        rx: mpsc::UnboundedReceiver<Delivery>,
        shared: Arc<Shared>,
        registry: Arc<Mutex<HashMap<EndpointId, mpsc::UnboundedSender<Delivery>>>>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let limits = Limits::of(None, &shared.config);
        Worker {
            id,
            rx,
            shared,
            registry,
            queue: VecDeque::new(),
            in_flight: 0,
            done_tx,
            done_rx,
            last_failed: false,
            last_completion: Instant::now(),
            bucket: limits.bucket(),
            limits,
            limits_loaded: None,
            endpoint: Ok(None),
        }
    }

    fn refresh_limits(&mut self, now: Instant) {
        if self
            .limits_loaded
            .is_some_and(|at| now.duration_since(at) < ENDPOINT_REFRESH)
        {
            return;
        }
        self.limits_loaded = Some(now);
        self.endpoint = match self.shared.table.get(&self.id) {
            Ok(endpoint) => Ok(endpoint.map(Arc::new)),
            Err(e) => Err(e.to_string()),
        };
        let current = self.endpoint.as_ref().ok().and_then(|e| e.as_deref());
        let limits = Limits::of(current, &self.shared.config);
        if limits != self.limits {
            self.bucket = limits.bucket();
            self.limits = limits;
        }
    }

    async fn run(mut self) {
        loop {
            let wake = self.start_sends();
            let idle = self.queue.is_empty() && self.in_flight == 0;
            let over_backlog = self.queue.len() > self.shared.config.endpoint_backlog;
            tokio::select! {
                biased;
                Some(ok) = self.done_rx.recv() => {
                    self.in_flight -= 1;
                    self.last_failed = !ok;
                    self.last_completion = Instant::now();
                    self.shed_if_slow();
                }
                received = self.rx.recv() => match received {
                    Some(d) => self.enqueue(d),
                    // The registry dropped our sender: only happens when we removed it.
                    None => return,
                },
                () = sleep_until_opt(wake) => {}
                // A hanging endpoint completes nothing; look again so its backlog is shed.
                () = tokio::time::sleep(SLOW_AFTER), if over_backlog => self.shed_if_slow(),
                () = tokio::time::sleep(IDLE_EXIT), if idle => {
                    if self.try_exit() {
                        return;
                    }
                }
            }
        }
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
        if delivery.is_stale() {
            self.forget(delivery);
            return;
        }
        if self.queue.len() >= self.shared.config.endpoint_backlog && self.is_slow(Instant::now()) {
            self.overflow(delivery);
            return;
        }
        // A healthy endpoint may queue past its backlog bound: it drains, and the global
        // in-flight limit holds intake back meanwhile.
        self.queue.push_back(Queued {
            delivery,
            enqueued: Instant::now(),
        });
    }

    /// Slow: the last request failed, or every send slot has been busy for a while with no
    /// response (a hanging endpoint).
    fn is_slow(&self, now: Instant) -> bool {
        self.last_failed
            || (self.in_flight >= self.limits.concurrency
                && now.duration_since(self.last_completion) >= SLOW_AFTER)
    }

    /// A slow endpoint keeps at most its backlog bound in memory; the newest of the rest
    /// are settled by handing them to the first retry tier, so they hold neither memory nor
    /// the partition's commits while the endpoint struggles.
    fn shed_if_slow(&mut self) {
        let backlog = self.shared.config.endpoint_backlog;
        if self.queue.len() <= backlog || !self.is_slow(Instant::now()) {
            return;
        }
        let excess: Vec<Queued> = self.queue.drain(backlog..).collect();
        debug!(
            shed = excess.len(),
            "endpoint is slow; moving its excess backlog to the first retry tier"
        );
        for q in excess {
            self.overflow(q.delivery);
        }
    }

    fn overflow(&self, delivery: Delivery) {
        let handoff = self.shared.handoff.clone();
        let metrics = self.shared.metrics.clone();
        tokio::spawn(async move {
            handoff.overflow(delivery).await;
            metrics.in_flight.dec();
        });
    }

    /// A delivery whose partition was revoked: its new owner sends it.
    fn forget(&self, delivery: Delivery) {
        self.shared.metrics.in_flight.dec();
        drop(delivery);
    }

    /// Starts as many requests as the limits allow; returns when to look again.
    fn start_sends(&mut self) -> Option<Instant> {
        let now = Instant::now();
        self.refresh_limits(now);
        while self.in_flight < self.limits.concurrency {
            while self.queue.front().is_some_and(|q| q.delivery.is_stale()) {
                if let Some(q) = self.queue.pop_front() {
                    self.forget(q.delivery);
                }
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
            self.in_flight += 1;
            let shared = self.shared.clone();
            let done = self.done_tx.clone();
            let endpoint = self.endpoint.clone();
            tokio::spawn(
                async move {
                    let ok = send(&shared, endpoint, batch).await;
                    let _ = done.send(ok);
                }
                .in_current_span(),
            );
        }
        None
    }

    /// Only first attempts are batched together; a retry goes alone (its attempt number
    /// and history are its own).
    fn next_batch(&self, now: Instant) -> Decision {
        let batchable = self
            .queue
            .iter()
            .take(self.limits.policy.max_events.max(1))
            .take_while(|q| q.delivery.attempt == 1)
            .map(|q| (q.delivery.body.len(), q.enqueued))
            .collect::<Vec<_>>();
        if batchable.is_empty() {
            return if self.queue.is_empty() {
                Decision::Idle
            } else {
                Decision::Send { count: 1 }
            };
        }
        decide(&self.limits.policy, &batchable, now)
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends one request carrying `batch` (one delivery or several) and settles each delivery
/// by the outcome. Returns true when the endpoint answered 2xx.
async fn send(shared: &Shared, endpoint: Snapshot, batch: Vec<Delivery>) -> bool {
    let handoff = &shared.handoff;
    let metrics = &shared.metrics;
    let count = batch.len() as i64;
    let endpoint = match endpoint {
        Ok(Some(ep)) => ep,
        Ok(None) => {
            for d in batch {
                handoff.endpoint_deleted(d).await;
            }
            metrics.in_flight.sub(count);
            return false;
        }
        Err(e) => {
            let failure = Failure::local(format!("reading the subscription: {e}"));
            for d in batch {
                handoff.after_failure(d, &failure).await;
            }
            metrics.in_flight.sub(count);
            return false;
        }
    };
    if !endpoint.enabled {
        for d in batch {
            handoff.dead_letter(d, "endpoint_disabled", None).await;
        }
        metrics.in_flight.sub(count);
        return false;
    }

    let now = now_ms();
    let (msg_id, body) = if batch.len() == 1 {
        (batch[0].id.clone(), batch[0].body.clone())
    } else {
        let id = batch_id(batch.iter().map(|d| d.id.as_str()));
        let bodies: Vec<&[u8]> = batch.iter().map(|d| d.body.as_ref()).collect();
        let created = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let body = Bytes::from(batch_body(&id, created, &bodies));
        (id, body)
    };
    let secrets: Vec<Secret> = endpoint.active_secrets(now).cloned().collect();
    let headers = match SignedHeaders::new(&msg_id, now / 1000, &body, &secrets) {
        Ok(h) => h,
        Err(e) => {
            let failure = Failure::local(format!("cannot sign: {e}"));
            handoff.record_attempt(&endpoint, &batch, &failure, "failed");
            for d in batch {
                handoff.after_failure(d, &failure).await;
            }
            metrics.in_flight.sub(count);
            return false;
        }
    };

    metrics.batch_size.observe(batch.len() as f64);
    let exchange = shared.http.post(&endpoint.url, &headers, body).await;
    metrics
        .request_duration
        .observe(exchange.latency.as_secs_f64());
    let outcome = classify(&exchange.result, SystemTime::now());
    let ok = outcome == Outcome::Settled;
    let failure = Failure::from_exchange(&exchange);
    match outcome {
        Outcome::Settled => {
            handoff.record_attempt(&endpoint, &batch, &failure, "delivered");
            handoff.succeeded(&endpoint);
            let done = now_ms();
            for d in batch {
                metrics
                    .end_to_end_latency
                    .observe((done - d.event_created_ms).max(0) as f64 / 1000.0);
                metrics.deliveries.with_label_values(&["delivered"]).inc();
                d.settle();
            }
        }
        Outcome::Retry { not_before, .. } => {
            let failure = failure.with_not_before(not_before);
            handoff.record_attempt(&endpoint, &batch, &failure, "failed");
            let disabled = handoff.failed(&endpoint, &failure).await;
            for d in batch {
                if disabled {
                    handoff
                        .dead_letter(d, "endpoint_disabled", Some(&failure))
                        .await;
                } else {
                    handoff.after_failure(d, &failure).await;
                }
            }
        }
        Outcome::Disable { .. } => {
            handoff.record_attempt(&endpoint, &batch, &failure, "endpoint_disabled");
            handoff
                .disable_endpoint(&endpoint, "endpoint_gone", &failure)
                .await;
            for d in batch {
                handoff
                    .dead_letter(d, "endpoint_gone", Some(&failure))
                    .await;
            }
        }
    }
    metrics.in_flight.sub(count);
    ok
}
