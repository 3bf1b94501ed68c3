//! Where the demo runs: the config it adapts (tiers in seconds, loopback allowed, a private
//! data directory), and its topics on the mock cluster or, on a real one, topics of its own
//! that it deletes afterwards.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ipnet::IpNet;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::{Config, RetryTier};
use crate::event::current_schema_name;
use crate::kafka::topics::{TopicSpec, ensure_topics};

use super::common::{DEMO_SCHEMA_ID, DEMO_TIERS_SECS, DemoError, kafka};

/// Turns a loaded config into the demo's: tiers in seconds, loopback allowed, a private data
/// dir, terse logs; on a real cluster (`prefix` given) topics and group of its own.
pub fn adapt_config(
    config: &mut Config,
    workdir: &Path,
    prefix: Option<&str>,
) -> anyhow::Result<()> {
    let name = |base: &str| match prefix {
        Some(p) => format!("hookrelay-demo-{p}-{base}"),
        None => base.to_owned(),
    };
    let t = &mut config.topics;
    for topic in [
        &mut t.events,
        &mut t.subscriptions,
        &mut t.invalid,
        &mut t.dead_letter,
        &mut t.attempts,
        &mut t.notifications,
        &mut t.requests,
        &mut t.api_keys,
    ] {
        *topic = name(topic);
    }
    // A demo needs no redundancy; one partition set small enough to read at a glance.
    t.replication_factor = 1;
    t.partitions.events = 3;
    t.partitions.subscriptions = 1;
    t.partitions.invalid = 1;
    t.partitions.retry = 2;
    t.partitions.dead_letter = 1;
    t.partitions.attempts = 2;
    t.partitions.notifications = 1;
    t.partitions.requests = 1;
    t.partitions.api_keys = 1;
    config.retry.tiers = DEMO_TIERS_SECS
        .iter()
        .map(|&s| RetryTier {
            topic: name(&format!("webhook-retry-{s}s")),
            delay: Duration::from_secs(s),
        })
        .collect();
    config.kafka.group_id = match prefix {
        Some(p) => format!("hookrelay-demo-{p}"),
        None => "hookrelay-demo".to_owned(),
    };
    let loopback: IpNet = "127.0.0.0/8".parse().context("the loopback network")?;
    if !config.delivery.ssrf_allowlist.contains(&loopback) {
        config.delivery.ssrf_allowlist.push(loopback);
    }
    config
        .codec
        .confluent_schema_ids
        .insert(DEMO_SCHEMA_ID, current_schema_name()?);
    config.subscriptions.data_dir = workdir.join("subscriptions");
    // The sample receivers are plain http on loopback.
    config.api.https_required = false;
    config.shutdown.drain_timeout = Duration::from_secs(5);
    // Progress goes to stdout; logs only for what needs attention (HOOKRELAY_LOG overrides).
    config.log.filter = "warn".to_owned();
    Ok(())
}

/// The admin address: the one asked for, else the configured one if it is free, else a
/// free port on the same interface.
pub(super) fn admin_listen(requested: Option<SocketAddr>, configured: SocketAddr) -> SocketAddr {
    if let Some(addr) = requested {
        return addr;
    }
    match std::net::TcpListener::bind(configured) {
        Ok(_) => configured,
        Err(_) => SocketAddr::new(configured.ip(), 0),
    }
}

pub(super) fn create_mock_topics(
    cluster: &MockCluster<'static, DefaultProducerContext>,
    specs: &[TopicSpec],
) -> Result<(), DemoError> {
    for spec in specs {
        // CreateTopics through the admin API is not implemented by the mock broker.
        cluster
            .create_topic(&spec.name, spec.partitions, 1)
            .map_err(|source| DemoError::MockTopic {
                topic: spec.name.clone(),
                source,
            })?;
    }
    Ok(())
}

pub(super) fn admin_client(
    config: &Config,
) -> Result<AdminClient<DefaultClientContext>, DemoError> {
    crate::kafka::client_config(&config.kafka)
        .create()
        .map_err(kafka("creating the admin client"))
}

pub(super) async fn create_external_topics(
    config: &Config,
    specs: &[TopicSpec],
) -> anyhow::Result<()> {
    let admin = admin_client(config)?;
    // As many replicas as the cluster has brokers, up to 3, so the durable producer's
    // acks=all works on a single local broker and on a real cluster alike.
    let brokers = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(15))
        .map_err(kafka("fetching cluster metadata"))?
        .brokers()
        .len();
    let replicas = i32::try_from(brokers.clamp(1, 3)).unwrap_or(1);
    let specs: Vec<TopicSpec> = specs
        .iter()
        .cloned()
        .map(|mut s| {
            s.replication_factor = replicas;
            s
        })
        .collect();
    ensure_topics(&admin, &specs)
        .await
        .context("creating the demo's topics")?;
    Ok(())
}

/// Removes what the demo created on a real cluster: its topics and its consumer group.
pub(super) async fn delete_external_topics(config: &Config, specs: &[TopicSpec]) {
    let Ok(admin) = admin_client(config) else {
        return;
    };
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match admin.delete_topics(&names, &opts).await {
        Ok(_) => println!("deleted the demo's {} topics", names.len()),
        Err(e) => eprintln!("demo: could not delete the demo's topics: {e}"),
    }
    for group in [config.kafka.group_id.clone(), config.notify_group_id()] {
        if let Err(e) = admin.delete_groups(&[group.as_str()], &opts).await {
            eprintln!("demo: could not delete consumer group {group}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::demo::common::DEMO_TIERS_SECS;
    use crate::kafka::topics::topic_specs;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn demo_config_scales_retries_and_isolates_a_real_cluster_run() {
        let dir = Path::new("/tmp/hookrelay-demo-test");
        let mut c = Config::load_from(None, &[]).expect("defaults");
        adapt_config(&mut c, dir, None).expect("adapt");
        c.validate().expect("the mock-cluster config is valid");
        let delays: Vec<u64> = c.retry.tiers.iter().map(|t| t.delay.as_secs()).collect();
        assert_eq!(delays, DEMO_TIERS_SECS);
        assert_eq!(c.topics.events, "license-events");
        assert!(
            c.delivery
                .ssrf_allowlist
                .iter()
                .any(|n| n.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)))
        );
        assert!(c.subscriptions.data_dir.starts_with(dir));

        let mut c = Config::load_from(None, &[]).expect("defaults");
        adapt_config(&mut c, dir, Some("abc")).expect("adapt");
        c.validate().expect("the real-cluster config is valid");
        let specs = topic_specs(&c);
        assert!(
            specs
                .iter()
                .all(|s| s.name.starts_with("hookrelay-demo-abc-")),
            "every topic is the run's own: {specs:?}"
        );
        assert_eq!(c.kafka.group_id, "hookrelay-demo-abc");
    }

    #[test]
    fn a_busy_admin_port_falls_back_to_a_free_one() {
        let taken = std::net::TcpListener::bind((LOOPBACK, 0)).expect("bind");
        let addr = taken.local_addr().expect("addr");
        assert_eq!(admin_listen(None, addr), SocketAddr::new(LOOPBACK, 0));
        assert_eq!(
            admin_listen(Some(addr), addr),
            addr,
            "an explicit address is kept"
        );
        drop(taken);
        assert_eq!(
            admin_listen(None, addr),
            addr,
            "a free configured port is used"
        );
    }
}
