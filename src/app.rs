//! Wiring: builds every part from the config and runs them until shutdown. This is the
//! only place that knows how the parts fit together.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use prometheus::Registry;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::delivery::InFlightCounter;
use crate::dispatch::client::HttpSender;
use crate::dispatch::{Dispatcher, Shared};
use crate::event::EventDecoder;
use crate::ingest::consumer::{Ingest, IngestParts, IngestTopics};
use crate::ingest::resting;
use crate::kafka;
use crate::lifecycle::{Readiness, stopped};
use crate::notify::Notifier;
use crate::retry::breaker::CircuitBreaker;
use crate::retry::handoff::Handoff;
use crate::retry::notices::write_owed_notices;
use crate::retry::schedule::RetrySchedule;
use crate::subscriptions::{Store, SubscriptionTable};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::NotifyMetrics;

/// What a running instance exposes to its caller (the CLI, the demo, tests).
pub struct Started {
    pub admin_addr: SocketAddr,
    /// Where the customer API and dashboard answer (`None` when `api.enabled` is off).
    pub api_addr: Option<SocketAddr>,
    pub table: Arc<SubscriptionTable>,
    pub readiness: Arc<Readiness>,
}

/// Runs hookrelay until `shutdown` turns true: follows the subscriptions table, consumes
/// the input topic, the retry tiers and the requests topic, delivers, and serves the admin
/// endpoints. `on_started` is called once the admin server is bound and the table is ready.
pub async fn run(
    config: Config,
    registry: Registry,
    shutdown: watch::Receiver<bool>,
    on_started: impl FnOnce(&Started),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.kafka_configured(),
        "kafka.bootstrap_servers is empty: set it in the config file or HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS (or run `hookrelay demo`)"
    );
    let cluster = kafka::check_connection(&config.kafka).await?;
    info!(brokers = cluster.brokers, "connected to Kafka");
    let metrics = Metrics::new(&registry).context("registering metrics")?;
    metrics.init_tiers(config.retry.tiers.len());
    let readiness = Arc::new(Readiness::default());
    let late = admin::LateRoutes::default();
    let admin_addr = admin::serve(
        config.admin.listen,
        admin::router(AdminState {
            registry: registry.clone(),
            readiness: readiness.clone(),
            late: late.clone(),
        }),
        shutdown.clone(),
    )
    .await?;
    info!(%admin_addr, "admin server listening (/metrics, /healthz, /readyz)");

    let client = kafka::client_config(&config.kafka);
    let store = Store::open(&config.subscriptions.data_dir, &config.topics.subscriptions)
        .with_context(|| {
            format!(
                "opening the subscriptions table in {}",
                config.subscriptions.data_dir.display()
            )
        })?;
    let (table, follower) =
        SubscriptionTable::start(client.clone(), &config.topics.subscriptions, store)
            .await
            .context("starting the subscriptions table")?;
    table
        .wait_ready()
        .await
        .context("catching up with the subscriptions topic")?;
    readiness.subscriptions_ready.store(true, Ordering::Release);
    metrics.subscriptions_ready.set(1);
    info!(
        endpoints = table.len(),
        instance = table.instance_id(),
        "subscriptions table ready"
    );

    let producer: FutureProducer = kafka::durable_producer_config(&config.kafka)
        .create()
        .context("creating the producer")?;
    readiness.producer_healthy.store(true, Ordering::Release);
    // The start-up check reached the cluster; the consumer's statistics keep this current.
    readiness.brokers_reachable.store(true, Ordering::Release);
    let api = if config.api.enabled {
        Some(
            crate::api::start(&config, table.clone(), producer.clone(), metrics.clone())
                .await
                .context("starting the customer API")?,
        )
    } else {
        None
    };
    // The admin server answers what it does not serve itself with the API once it is up, or
    // with 404 when the API is off or listens on an address of its own.
    let api_addr = match (&api, config.api.listen) {
        (None, _) => {
            late.set(axum::Router::new());
            None
        }
        (Some(api), None) => {
            late.set(api.router.clone());
            Some(admin_addr)
        }
        (Some(api), Some(addr)) => {
            late.set(axum::Router::new());
            Some(admin::serve(addr, api.router.clone(), shutdown.clone()).await?)
        }
    };
    if let Some(addr) = api_addr {
        info!(%addr, "customer API listening (/v1, /dashboard)");
    }
    let schedule = RetrySchedule::new(config.retry.tiers.iter().map(|t| t.delay).collect())
        .context("retry.tiers")?;
    let handoff = Arc::new(Handoff::new(
        producer.clone(),
        &config,
        table.clone(),
        metrics.clone(),
    ));
    let in_flight = InFlightCounter::new(metrics.in_flight.clone());
    let (room_tx, room_rx) = tokio::sync::mpsc::unbounded_channel();
    let threshold = NonZeroU32::new(config.retry.breaker_threshold).unwrap_or(NonZeroU32::MIN);
    let dispatcher = Arc::new(Dispatcher::new(Arc::new(Shared {
        http: HttpSender::new(&config.delivery)?,
        table: table.clone(),
        handoff: handoff.clone(),
        metrics: metrics.clone(),
        config: config.delivery.clone(),
        schedule,
        breaker: Mutex::new(CircuitBreaker::new(threshold)),
        closing: CancellationToken::new(),
        room_tx,
        latency_reference: std::sync::atomic::AtomicU64::new(0),
    })));
    let ingest = Ingest::new(IngestParts {
        client,
        group_id: config.kafka.group_id.clone(),
        topics: IngestTopics {
            events: config.topics.events.clone(),
            tiers: config.retry.tiers.iter().map(|t| t.topic.clone()).collect(),
            requests: config.topics.requests.clone(),
        },
        rests: config
            .retry
            .tiers
            .iter()
            .filter_map(|t| Some((t.topic.clone(), resting::tier_rest(t.delay)?)))
            .chain([(config.topics.requests.clone(), resting::REQUESTS_REST)])
            .collect(),
        decoder: EventDecoder::new(&config.codec).context("codec.confluent_schema_ids")?,
        registry: if config.codec.schema_registry.enabled() {
            Some(Arc::new(
                crate::ingest::registry::RegistryClient::new(&config.codec.schema_registry)
                    .context("codec.schema_registry")?,
            ))
        } else {
            None
        },
        table: table.clone(),
        dispatcher: dispatcher.clone(),
        handoff,
        metrics: metrics.clone(),
        in_flight,
        room_rx,
        max_in_flight: config.delivery.max_in_flight,
        readiness: readiness.clone(),
    })?;

    let notices = tokio::spawn(write_owed_notices(
        table.clone(),
        producer.clone(),
        config.topics.notifications.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let watch_health = {
        let (table, producer, readiness, metrics) = (
            table.clone(),
            producer.clone(),
            readiness.clone(),
            metrics.clone(),
        );
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = stopped(&mut shutdown) => return,
                    _ = tick.tick() => {}
                }
                metrics.subscriptions_endpoints.set(table.len() as i64);
                let healthy = producer.client().fatal_error().is_none();
                readiness.producer_healthy.store(healthy, Ordering::Release);
            }
        })
    };

    // Owner e-mails, when configured to run here (else `hookrelay notify` runs them). Its
    // metrics are exported either way, at zero when it does not run here.
    let notify_metrics =
        NotifyMetrics::new(&registry).context("registering the notifier's metrics")?;
    let notifier = if config.notify.enabled {
        let notifier = Notifier::new(&config, table.clone(), notify_metrics)
            .context("starting the notifier")?;
        Some(tokio::spawn(notifier.run(shutdown.clone())))
    } else {
        None
    };

    on_started(&Started {
        admin_addr,
        api_addr,
        table: table.clone(),
        readiness: readiness.clone(),
    });
    ingest.run(shutdown, config.shutdown.drain_timeout).await;
    watch_health.abort();
    let _ = notices.await;
    if let Some(notifier) = notifier {
        match notifier.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "the notifier failed"),
            Err(e) => tracing::error!(error = %e, "the notifier task panicked"),
        }
    }
    // Whatever the attempts log still holds goes out before we exit.
    let _ = producer.flush(Duration::from_secs(5));
    table.shutdown();
    let _ = follower.await;
    if let Some(api) = api {
        api.table.shutdown();
        let _ = api.follower.await;
    }
    Ok(())
}

/// Runs only the notifier (`hookrelay notify`) until `shutdown` turns true: its own
/// subscriptions table (to find recipients), the admin endpoints, and the e-mails.
/// `on_started` is called once the table is ready and the notifier subscribed.
pub async fn notify(
    config: Config,
    registry: Registry,
    shutdown: watch::Receiver<bool>,
    on_started: impl FnOnce(&Started),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.kafka_configured(),
        "kafka.bootstrap_servers is empty: set it in the config file or HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS"
    );
    config.validate_notify(true)?;
    let cluster = kafka::check_connection(&config.kafka).await?;
    info!(brokers = cluster.brokers, "connected to Kafka");
    let metrics = NotifyMetrics::new(&registry).context("registering metrics")?;
    let readiness = Arc::new(Readiness::default());
    let admin_addr = admin::serve(
        config.admin.listen,
        admin::router(AdminState {
            registry: registry.clone(),
            readiness: readiness.clone(),
            late: admin::LateRoutes::none(),
        }),
        shutdown.clone(),
    )
    .await?;
    info!(%admin_addr, "admin server listening (/metrics, /healthz, /readyz)");
    let store = Store::open(&config.subscriptions.data_dir, &config.topics.subscriptions)
        .with_context(|| {
            format!(
                "opening the subscriptions table in {}",
                config.subscriptions.data_dir.display()
            )
        })?;
    let (table, follower) = SubscriptionTable::start(
        kafka::client_config(&config.kafka),
        &config.topics.subscriptions,
        store,
    )
    .await
    .context("starting the subscriptions table")?;
    table
        .wait_ready()
        .await
        .context("catching up with the subscriptions topic")?;
    let notifier =
        Notifier::new(&config, table.clone(), metrics).context("starting the notifier")?;
    // The notifier has no ingest consumer or producer: those checks pass by definition.
    for flag in [
        &readiness.subscriptions_ready,
        &readiness.consumer_assigned,
        &readiness.producer_healthy,
        &readiness.brokers_reachable,
    ] {
        flag.store(true, Ordering::Release);
    }
    on_started(&Started {
        admin_addr,
        api_addr: None,
        table: table.clone(),
        readiness: readiness.clone(),
    });
    let result = notifier.run(shutdown).await;
    table.shutdown();
    let _ = follower.await;
    result.map_err(Into::into)
}

/// A shutdown signal that turns true on SIGTERM or Ctrl-C.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
