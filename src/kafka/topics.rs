//! `hookrelay topics create`: every topic the service uses, with its settings, created
//! idempotently; existing topics whose settings differ are reported, never altered.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::Config;

/// One topic as hookrelay wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Only the settings hookrelay cares about; everything else is left to the broker.
    pub configs: BTreeMap<String, String>,
}

/// What `ensure_topics` found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicReport {
    Created,
    Unchanged,
    Differs(Vec<Difference>),
}

/// A setting of an existing topic that is not what the config asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub setting: String,
    pub wanted: String,
    pub actual: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("Kafka admin request failed")]
    Client(#[source] KafkaError),
    #[error("creating topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("reading the configs of topic {topic}")]
    Describe {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("reading the configs of topic {topic}: {code}")]
    DescribeCode {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("fetching metadata")]
    Metadata(#[source] KafkaError),
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// Every topic the service uses, from the config. Pure, so it is tested without Kafka.
pub fn topic_specs(config: &Config) -> Vec<TopicSpec> {
    let t = &config.topics;
    let rf = i32::from(t.replication_factor);
    let spec = |name: &str, partitions: u16, configs: &[(&str, String)]| TopicSpec {
        name: name.to_owned(),
        partitions: i32::from(partitions),
        replication_factor: rf,
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    };
    let delete = || ("cleanup.policy", "delete".to_owned());
    let mut specs = vec![
        spec(&t.events, t.partitions.events, &[delete()]),
        spec(
            &t.subscriptions,
            t.partitions.subscriptions,
            &[
                ("cleanup.policy", "compact".to_owned()),
                // Keep tombstones long enough for every instance to see a delete.
                (
                    "delete.retention.ms",
                    millis(Duration::from_secs(7 * 86_400)),
                ),
                ("min.compaction.lag.ms", "0".to_owned()),
            ],
        ),
        spec(
            &t.invalid,
            t.partitions.invalid,
            &[delete(), ("retention.ms", millis(t.retention.invalid))],
        ),
        spec(
            &t.dead_letter,
            t.partitions.dead_letter,
            &[delete(), ("retention.ms", millis(t.retention.dead_letter))],
        ),
        spec(
            &t.attempts,
            t.partitions.attempts,
            &[delete(), ("retention.ms", millis(t.retention.attempts))],
        ),
        spec(
            &t.notifications,
            t.partitions.notifications,
            &[
                delete(),
                ("retention.ms", millis(t.retention.notifications)),
            ],
        ),
        spec(
            &t.requests,
            t.partitions.requests,
            &[delete(), ("retention.ms", millis(t.retention.requests))],
        ),
        spec(
            &t.api_keys,
            t.partitions.api_keys,
            &[
                ("cleanup.policy", "compact".to_owned()),
                // A revocation (tombstone) must reach every instance, even one that was down.
                (
                    "delete.retention.ms",
                    millis(Duration::from_secs(7 * 86_400)),
                ),
            ],
        ),
    ];
    for tier in &config.retry.tiers {
        specs.push(spec(
            &tier.topic,
            t.partitions.retry,
            &[
                delete(),
                ("retention.ms", millis(config.retry_retention(tier))),
            ],
        ));
    }
    specs
}

/// Creates the topics that do not exist and compares the settings of those that do.
pub async fn ensure_topics(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<Vec<(String, TopicReport)>, TopicsError> {
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|s| {
            s.configs.iter().fold(
                NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(s.replication_factor),
                ),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let created = admin
        .create_topics(new_topics.iter(), &opts)
        .await
        .map_err(TopicsError::Client)?;
    let mut reports = Vec::with_capacity(specs.len());
    let mut existing = Vec::new();
    for (spec, result) in specs.iter().zip(created) {
        match result {
            Ok(_) => reports.push((spec.name.clone(), TopicReport::Created)),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(spec),
            Err((topic, code)) => return Err(TopicsError::Create { topic, code }),
        }
    }
    if existing.is_empty() {
        return Ok(reports);
    }

    let partitions = partition_counts(admin, &existing).await?;
    let described = describe(admin, &existing, &opts).await?;
    for (spec, result) in existing.into_iter().zip(described) {
        let resource = result.map_err(|code| TopicsError::DescribeCode {
            topic: spec.name.clone(),
            code,
        })?;
        debug_assert!(matches!(
            resource.specifier,
            OwnedResourceSpecifier::Topic(_)
        ));
        let mut differences = Vec::new();
        if let Some(&actual) = partitions.get(&spec.name)
            && actual != spec.partitions
        {
            differences.push(Difference {
                setting: "partitions".to_owned(),
                wanted: spec.partitions.to_string(),
                actual: actual.to_string(),
            });
        }
        for (key, wanted) in &spec.configs {
            let actual = resource
                .get(key)
                .and_then(|entry| entry.value.clone())
                .unwrap_or_default();
            if &actual != wanted {
                differences.push(Difference {
                    setting: key.clone(),
                    wanted: wanted.clone(),
                    actual,
                });
            }
        }
        let report = if differences.is_empty() {
            TopicReport::Unchanged
        } else {
            TopicReport::Differs(differences)
        };
        reports.push((spec.name.clone(), report));
    }
    Ok(reports)
}

/// DescribeConfigs for `specs`. A topic created a moment ago (by us or by someone racing us)
/// can come back with no config entries until the broker's metadata settles, so such an
/// answer is asked again for a few seconds before it is believed.
async fn describe(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[&TopicSpec],
    opts: &AdminOptions,
) -> Result<Vec<rdkafka::admin::ConfigResourceResult>, TopicsError> {
    let resources: Vec<ResourceSpecifier<'_>> = specs
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    let mut tries = 0;
    loop {
        let described = admin
            .describe_configs(resources.iter(), opts)
            .await
            .map_err(|source| TopicsError::Describe {
                topic: specs.first().map(|s| s.name.clone()).unwrap_or_default(),
                source,
            })?;
        let settled = described
            .iter()
            .all(|r| r.as_ref().map_or(true, |res| !res.entries.is_empty()));
        tries += 1;
        if settled || tries >= 20 {
            return Ok(described);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[&TopicSpec],
) -> Result<BTreeMap<String, i32>, TopicsError> {
    let mut counts = BTreeMap::new();
    for spec in specs {
        // Metadata of a topic created a moment ago may not list it (or its partitions) yet.
        for attempt in 0..20 {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(&spec.name), Duration::from_secs(30))
                .map_err(TopicsError::Metadata)?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == spec.name && t.error().is_none())
                .map_or(0, |t| t.partitions().len() as i32);
            if partitions > 0 || attempt == 19 {
                counts.insert(spec.name.clone(), partitions);
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(counts)
}

/// A human-readable summary, one line per topic.
pub fn render_reports(reports: &[(String, TopicReport)]) -> String {
    let mut out = String::new();
    for (name, report) in reports {
        match report {
            TopicReport::Created => out.push_str(&format!("created    {name}\n")),
            TopicReport::Unchanged => out.push_str(&format!("ok         {name}\n")),
            TopicReport::Differs(diffs) => {
                out.push_str(&format!("DIFFERS    {name}\n"));
                for d in diffs {
                    out.push_str(&format!(
                        "           {}: wanted {}, found {}\n",
                        d.setting, d.wanted, d.actual
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_cover_every_topic_with_its_policy() {
        let config = Config::load_from(None, &[]).expect("defaults");
        let specs = topic_specs(&config);
        assert_eq!(specs.len(), 8 + 5);
        let keys = specs
            .iter()
            .find(|s| s.name == "webhook-api-keys")
            .expect("API keys topic");
        assert_eq!(keys.configs["cleanup.policy"], "compact");
        let subs = specs
            .iter()
            .find(|s| s.name == "webhook-subscriptions")
            .expect("subscriptions topic");
        assert_eq!(subs.configs["cleanup.policy"], "compact");
        let dlq = specs.iter().find(|s| s.name == "webhook-dlq").expect("dlq");
        let weeks: u64 = dlq.configs["retention.ms"].parse().expect("millis");
        assert!(weeks >= 14 * 86_400_000, "dead letters kept for weeks");
        for tier in &config.retry.tiers {
            let spec = specs
                .iter()
                .find(|s| s.name == tier.topic)
                .expect("tier topic");
            let retention: u128 = spec.configs["retention.ms"].parse().expect("millis");
            assert!(retention >= 2 * tier.delay.as_millis());
        }
    }
}
