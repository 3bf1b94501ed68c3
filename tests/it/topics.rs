//! `topics create` against the real broker: creates every topic with its settings (read
//! back with DescribeConfigs), a second run changes nothing, and drift is reported.

use std::time::Duration;

use hookrelay::config::Config;
use hookrelay::kafka::topics::{TopicReport, ensure_topics, topic_specs};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};

use crate::common;

/// A config whose every topic name is unique to this test (three retry tiers, three
/// input partitions).
fn isolated_config() -> Config {
    let (config, _dir) = crate::harness::test_config(
        &[1, 2, 3],
        &[("HOOKRELAY__TOPICS__PARTITIONS__EVENTS", "3")],
    );
    config
}

#[tokio::test]
async fn creates_every_topic_with_its_settings_and_is_idempotent() {
    let config = isolated_config();
    let admin = common::admin();
    let specs = topic_specs(&config);
    assert_eq!(specs.len(), 8 + 3);

    let first = ensure_topics(&admin, &specs).await.expect("first run");
    assert!(
        first.iter().all(|(_, r)| *r == TopicReport::Created),
        "{first:?}"
    );

    // Read the settings back from the broker.
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let resources: Vec<_> = specs
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    // A topic created a moment ago can describe with no entries until the broker's metadata
    // settles (see kafka::topics::describe): ask until every topic has its entries.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let described = loop {
        let described = admin
            .describe_configs(resources.iter(), &opts)
            .await
            .expect("describe");
        let settled = described
            .iter()
            .all(|r| r.as_ref().is_ok_and(|res| !res.entries.is_empty()));
        if settled || std::time::Instant::now() > deadline {
            break described;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (spec, result) in specs.iter().zip(described) {
        let resource = result.expect("describe result");
        for (key, wanted) in &spec.configs {
            let actual = resource.get(key).and_then(|e| e.value.clone());
            assert_eq!(
                actual.as_deref(),
                Some(wanted.as_str()),
                "{} {key}",
                spec.name
            );
        }
    }
    let subs = resource_value(&admin, &config.topics.subscriptions, "cleanup.policy").await;
    assert_eq!(subs, "compact");
    let dlq_retention: u64 = resource_value(&admin, &config.topics.dead_letter, "retention.ms")
        .await
        .parse()
        .expect("millis");
    assert!(dlq_retention >= 14 * 86_400_000);

    let metadata = admin
        .inner()
        .fetch_metadata(Some(&config.topics.events), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    let second = ensure_topics(&admin, &specs).await.expect("second run");
    assert!(
        second.iter().all(|(_, r)| *r == TopicReport::Unchanged),
        "a second run changes nothing: {second:?}"
    );
}

#[tokio::test]
async fn reports_existing_topics_whose_settings_differ() {
    let config = isolated_config();
    // Someone created the subscriptions topic by hand: one partition, no compaction.
    common::create_topic(
        &config.topics.subscriptions,
        1,
        &[("cleanup.policy", "delete")],
    )
    .await;
    let reports = ensure_topics(&common::admin(), &topic_specs(&config))
        .await
        .expect("ensure");
    let (_, report) = reports
        .iter()
        .find(|(name, _)| name == &config.topics.subscriptions)
        .expect("reported");
    let TopicReport::Differs(diffs) = report else {
        panic!("expected a difference, got {report:?}");
    };
    let settings: Vec<_> = diffs.iter().map(|d| d.setting.as_str()).collect();
    assert!(settings.contains(&"cleanup.policy"), "{diffs:?}");
    assert!(settings.contains(&"partitions"), "{diffs:?}");
    assert_eq!(
        resource_value(
            &common::admin(),
            &config.topics.subscriptions,
            "cleanup.policy"
        )
        .await,
        "delete",
        "drift is reported, not silently altered"
    );
}

#[tokio::test]
async fn topics_create_command_exits_zero_then_reports_nothing_new() {
    let config = isolated_config();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, toml_for(&config)).expect("write config");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(["topics", "create", "--config"])
            .arg(&file)
            .output()
            .expect("run hookrelay")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("created"));
    let second = run();
    assert!(second.status.success(), "{second:?}");
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(!out.contains("created") && out.contains("ok"), "{out}");
}

fn toml_for(config: &Config) -> String {
    config.to_masked_toml()
}

async fn resource_value(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    topic: &str,
    key: &str,
) -> String {
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await
        .expect("describe");
    described
        .into_iter()
        .next()
        .expect("one result")
        .expect("resource")
        .get(key)
        .and_then(|e| e.value.clone())
        .unwrap_or_default()
}
