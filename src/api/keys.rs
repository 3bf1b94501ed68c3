//! Creating and revoking API keys (`hookrelay api-key create|revoke`): a key is a record on
//! the compacted keys topic holding the digest of its secret; revoking writes a tombstone.
//! Every instance serving the API picks either up within moments.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::Config;
use crate::delivery::now_ms;
use crate::records::ApiKey;
use crate::records::api_key::{NewKey, is_key_id};

const SEND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(
        "kafka.bootstrap_servers is empty: name the brokers in the config file or HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS"
    )]
    NoKafka,
    #[error("{0:?} is not a key id (key_ followed by 16 hex digits)")]
    NotAKeyId(String),
    #[error("an account id must be 1 to 255 characters without control characters")]
    BadAccount,
    #[error("the API key record does not encode")]
    Encode(#[source] crate::records::avro::AvroError),
    #[error("creating the Kafka producer")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error("writing to {topic}")]
    Write {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Writes `key` to the keys topic and waits for the broker's acknowledgement.
pub async fn publish_key(
    producer: &FutureProducer,
    topic: &str,
    key: &ApiKey,
) -> Result<(), KeysError> {
    let bytes = key.to_avro().map_err(KeysError::Encode)?;
    send(producer, topic, &key.id, Some(&bytes)).await
}

/// Writes a tombstone for key `id`: every instance forgets the key.
pub async fn revoke_key(producer: &FutureProducer, topic: &str, id: &str) -> Result<(), KeysError> {
    if !is_key_id(id) {
        return Err(KeysError::NotAKeyId(id.to_owned()));
    }
    send(producer, topic, id, None).await
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: Option<&[u8]>,
) -> Result<(), KeysError> {
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer
        .send(record, SEND_TIMEOUT)
        .await
        .map(drop)
        .map_err(|(source, _)| KeysError::Write {
            topic: topic.to_owned(),
            source,
        })
}

fn producer(config: &Config) -> Result<FutureProducer, KeysError> {
    if !config.kafka_configured() {
        return Err(KeysError::NoKafka);
    }
    crate::kafka::durable_producer_config(&config.kafka)
        .create()
        .map_err(KeysError::Producer)
}

/// `hookrelay api-key create`: makes a key for `account` (`None`: an operator key) and
/// writes it. The returned token exists nowhere else: show it once.
pub async fn create(
    config: &Config,
    account: Option<String>,
    description: Option<String>,
) -> Result<NewKey, KeysError> {
    if let Some(a) = &account
        && (a.is_empty() || a.len() > 255 || a.chars().any(char::is_control))
    {
        return Err(KeysError::BadAccount);
    }
    let made = ApiKey::generate(account, description, now_ms());
    let producer = producer(config)?;
    publish_key(&producer, &config.topics.api_keys, &made.key).await?;
    Ok(made)
}

/// `hookrelay api-key revoke`.
pub async fn revoke(config: &Config, id: &str) -> Result<(), KeysError> {
    let producer = producer(config)?;
    revoke_key(&producer, &config.topics.api_keys, id).await
}
