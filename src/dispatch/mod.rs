//! HTTP dispatch: the [`Dispatcher`] that routes deliveries to one [`worker`] per endpoint
//! and tells intake how much room each endpoint has, the pooled [`client`], the outcome
//! [`classify`]er and the [`ssrf`] guard.
pub mod classify;
pub mod client;
pub mod ssrf;
pub mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use crate::config::DeliveryConfig;
use crate::delivery::Delivery;
use crate::ids::EndpointId;
use crate::retry::breaker::CircuitBreaker;
use crate::retry::handoff::Handoff;
use crate::retry::schedule::RetrySchedule;
use crate::subscriptions::SubscriptionTable;
use crate::telemetry::Metrics;

use client::HttpSender;
use worker::{Load, Worker};

/// Everything a send needs, shared by all workers.
pub struct Shared {
    pub http: HttpSender,
    pub table: Arc<SubscriptionTable>,
    pub handoff: Arc<Handoff>,
    pub metrics: Metrics,
    pub config: DeliveryConfig,
    pub schedule: RetrySchedule,
    /// Consecutive failures per endpoint, in this process.
    pub breaker: Mutex<CircuitBreaker>,
    /// Cancelled at shutdown: workers drop what they hold unsent (it stays uncommitted) and
    /// let requests in flight finish.
    pub closing: CancellationToken,
    /// Where a worker says that an endpoint a partition waits for may take more (see
    /// [`Dispatcher::await_room`]); intake resumes the partition at once.
    pub room_tx: mpsc::UnboundedSender<EndpointId>,
    /// The latency requests see now, over all endpoints (a slow-moving mean, as `f64`
    /// seconds' bits; 0 until a request finished): what an endpoint's own latency is judged
    /// against, see [`worker`].
    pub latency_reference: AtomicU64,
}

impl Shared {
    pub fn breaker(&self) -> MutexGuard<'_, CircuitBreaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Folds one request's latency into [`Shared::latency_reference`]. Updates from several
    /// workers may race; the mean only needs to be roughly right.
    pub fn observe_latency(&self, latency: Duration) {
        const WEIGHT: f64 = 0.01;
        let l = latency.as_secs_f64();
        let old = f64::from_bits(self.latency_reference.load(Ordering::Relaxed));
        let new = if old == 0.0 {
            l
        } else {
            old + WEIGHT * (l - old)
        };
        self.latency_reference
            .store(new.to_bits(), Ordering::Relaxed);
    }

    /// See [`Shared::latency_reference`].
    pub fn latency_reference(&self) -> Option<Duration> {
        let v = f64::from_bits(self.latency_reference.load(Ordering::Relaxed));
        (v > 0.0).then(|| Duration::from_secs_f64(v))
    }
}

/// A live worker, as the dispatcher knows it.
pub(crate) struct Entry {
    tx: mpsc::UnboundedSender<Delivery>,
    load: Arc<Load>,
}

/// Whether an endpoint can take one more delivery now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Free,
    /// Its backlog is full. `slow`: it will not drain soon (failing, hanging, or throttled),
    /// so what does not fit goes to a retry tier; otherwise it is briefly busy and the
    /// record may wait in Kafka.
    Full {
        slow: bool,
    },
}

/// Routes deliveries to their endpoint's worker, starting one when needed.
pub struct Dispatcher {
    workers: Arc<Mutex<HashMap<EndpointId, Entry>>>,
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

    fn lock(&self) -> MutexGuard<'_, HashMap<EndpointId, Entry>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `endpoint` has room for one more delivery (`delivery.endpoint_backlog`).
    pub fn room(&self, endpoint: &EndpointId) -> Room {
        let workers = self.lock();
        let Some(entry) = workers.get(endpoint) else {
            return Room::Free;
        };
        if entry.load.queued.load(Ordering::Acquire) < self.shared.config.endpoint_backlog {
            Room::Free
        } else {
            Room::Full {
                slow: entry.load.slow.load(Ordering::Acquire),
            }
        }
    }

    /// Whether a partition waiting for `endpoint` may go on: its backlog is down to three
    /// quarters (so a resumed partition admits a good run of records before it waits again),
    /// or it turned out slow (what does not fit then goes to a retry tier).
    pub fn resumable(&self, endpoint: &EndpointId) -> bool {
        let workers = self.lock();
        let Some(entry) = workers.get(endpoint) else {
            return true;
        };
        let backlog = self.shared.config.endpoint_backlog;
        entry.load.queued.load(Ordering::Acquire) <= backlog - backlog / 4
            || entry.load.slow.load(Ordering::Acquire)
    }

    /// A partition waits for `endpoint`: its worker will send the id on [`Shared::room_tx`]
    /// once [`Dispatcher::resumable`] holds. Returns false when it already holds.
    pub fn await_room(&self, endpoint: &EndpointId) -> bool {
        let workers = self.lock();
        let Some(entry) = workers.get(endpoint) else {
            return false;
        };
        entry.load.awaited.store(true, Ordering::Release);
        let backlog = self.shared.config.endpoint_backlog;
        let resumable = entry.load.queued.load(Ordering::Acquire) <= backlog - backlog / 4
            || entry.load.slow.load(Ordering::Acquire);
        !resumable
    }

    /// Queues a delivery for its endpoint. Intake asks [`Dispatcher::room`] first; this
    /// never refuses, so a record that fans out is admitted whole.
    pub fn submit(&self, delivery: Delivery) {
        let mut workers = self.lock();
        let id = delivery.endpoint_id.clone();
        let delivery = match workers.get(&id) {
            // Sent under the lock: a worker only exits after checking, under the same lock,
            // that its channel is empty, so nothing is lost between the two.
            Some(entry) => {
                entry.load.queued.fetch_add(1, Ordering::AcqRel);
                match entry.tx.send(delivery) {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(d)) => {
                        entry.load.queued.fetch_sub(1, Ordering::AcqRel);
                        d
                    }
                }
            }
            None => delivery,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let load = Arc::new(Load::default());
        load.queued.fetch_add(1, Ordering::AcqRel);
        // A fresh channel with its receiver alive cannot be closed.
        let _ = tx.send(delivery);
        workers.insert(
            id.clone(),
            Entry {
                tx,
                load: load.clone(),
            },
        );
        let worker = Worker::new(
            id.clone(),
            rx,
            load,
            self.shared.clone(),
            self.workers.clone(),
        );
        tokio::spawn(
            worker
                .run()
                .instrument(info_span!("endpoint", endpoint_id = %id)),
        );
    }

    /// Shutdown, first step: workers drop what they hold unsent and finish what is in flight.
    pub fn close(&self) {
        self.shared.closing.cancel();
    }

    /// Endpoints with a live worker.
    pub fn active_endpoints(&self) -> usize {
        self.lock().len()
    }
}
