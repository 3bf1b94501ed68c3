//! The demo's event stream: license events of every type in every encoding, and a burst
//! (a bulk import) that only the fast endpoint subscribes to.

use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::event::{EventType, LicenseEvent, encode_avro, encode_confluent, encode_json};
use crate::ids::{AccountId, EventId};

use super::common::{ACME, BURST_AFTER, DEMO_SCHEMA_ID, DemoError, GLOBEX, PRODUCE_TIMEOUT};

/// How an input record is encoded; the service accepts all three on the same topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Avro single-object encoding (schema fingerprint in the record).
    Avro,
    /// Avro in the Confluent wire format (schema registry id in the record).
    Confluent,
    /// JSON of the same shape, as a person would produce by hand.
    Json,
}

impl Encoding {
    pub(super) fn encode(self, event: &LicenseEvent) -> Result<Vec<u8>, DemoError> {
        match self {
            Encoding::Avro => encode_avro(event).map_err(DemoError::Encode),
            Encoding::Confluent => {
                encode_confluent(event, DEMO_SCHEMA_ID).map_err(DemoError::Encode)
            }
            Encoding::Json => Ok(encode_json(event)),
        }
    }
}

/// Event `i` of the steady stream: accounts alternate, every type comes up for both within
/// twenty events, and the three encodings take turns.
pub fn stream_event(run_id: &str, i: u64, created: OffsetDateTime) -> (LicenseEvent, Encoding) {
    let account = if i.is_multiple_of(2) { ACME } else { GLOBEX };
    let event_type = EventType::ALL[((i / 2) % EventType::ALL.len() as u64) as usize];
    let event = sample_event(
        EventId::new(format!("evt_demo{run_id}s{i:06}")),
        event_type,
        account,
        i,
        created,
    );
    let encoding = match i % 3 {
        0 => Encoding::Json,
        1 => Encoding::Avro,
        _ => Encoding::Confluent,
    };
    (event, encoding)
}

/// Event `i` of the bulk import: a license created for Acme.
pub fn burst_event(run_id: &str, i: u64, created: OffsetDateTime) -> LicenseEvent {
    sample_event(
        EventId::new(format!("evt_demo{run_id}b{i:06}")),
        EventType::LicenseCreated,
        ACME,
        i,
        created,
    )
}

pub(super) fn sample_event(
    id: EventId,
    event_type: EventType,
    account: &str,
    i: u64,
    created: OffsetDateTime,
) -> LicenseEvent {
    let mut event = crate::event::sample(id, event_type, AccountId::from(account));
    // Truncated to milliseconds, the resolution of the Avro timestamp.
    event.created = created
        .replace_nanosecond(created.millisecond() as u32 * 1_000_000)
        .unwrap_or(created);
    let n = i.wrapping_mul(0x9E37_79B9) & 0xffff_ffff;
    event.data.license_key = format!(
        "TO-{:04X}-{:04X}-{:04X}-{:04X}",
        (n >> 16) & 0xffff,
        n & 0xffff,
        (i >> 16) & 0xffff,
        i & 0xffff
    );
    let host = if account == ACME { "acme" } else { "globex" };
    event.data.domain = Some(format!("app{}.{host}.example", i % 7));
    event
}

/// What the event stream produced.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Produced {
    pub(super) steady: u64,
    pub(super) burst: u64,
}

pub(super) struct Feed {
    pub(super) run_id: String,
    pub(super) rate: f64,
    pub(super) burst: usize,
}

/// Produces the steady stream until `stop`, and the burst once, [`BURST_AFTER`] in.
pub(super) async fn feed(
    producer: &FutureProducer,
    topic: &str,
    plan: &Feed,
    mut stop: watch::Receiver<bool>,
) -> Result<Produced, DemoError> {
    let mut produced = Produced::default();
    let start = Instant::now();
    let mut burst_pending = plan.burst > 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(produced),
            _ = tick.tick() => {}
        }
        let (event, encoding) =
            stream_event(&plan.run_id, produced.steady, OffsetDateTime::now_utc());
        let payload = encoding.encode(&event)?;
        let record = FutureRecord::to(topic)
            .key(event.account_id.as_str())
            .payload(&payload);
        producer
            .send(record, PRODUCE_TIMEOUT)
            .await
            .map_err(|(source, _)| DemoError::Produce {
                topic: topic.to_owned(),
                source,
            })?;
        produced.steady += 1;

        if burst_pending && start.elapsed() >= BURST_AFTER {
            burst_pending = false;
            produced.burst = produce_burst(producer, topic, plan).await?;
        }
    }
}

/// The bulk import: every record queued at once, then all acknowledgements awaited.
pub(super) async fn produce_burst(
    producer: &FutureProducer,
    topic: &str,
    plan: &Feed,
) -> Result<u64, DemoError> {
    let created = OffsetDateTime::now_utc();
    let payloads = (0..plan.burst as u64)
        .map(|i| encode_avro(&burst_event(&plan.run_id, i, created)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DemoError::Encode)?;
    let produce_error = |source| DemoError::Produce {
        topic: topic.to_owned(),
        source,
    };
    let mut pending = Vec::with_capacity(payloads.len());
    for payload in &payloads {
        let record = FutureRecord::to(topic).key(ACME).payload(payload);
        let future = producer
            .send_result(record)
            .map_err(|(source, _)| produce_error(source))?;
        pending.push(future);
    }
    let mut acknowledged = 0;
    for outcome in futures::future::join_all(pending).await {
        match outcome {
            Ok(Ok(_)) => acknowledged += 1,
            Ok(Err((source, _))) => return Err(produce_error(source)),
            Err(_) => return Err(produce_error(KafkaError::Canceled)),
        }
    }
    Ok(acknowledged)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::demo::cluster::adapt_config;

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-03-15 14:30:00.123456 UTC)
    }

    #[test]
    fn the_stream_covers_every_type_for_both_accounts_in_every_encoding() {
        let mut seen = std::collections::BTreeSet::new();
        let mut encodings = std::collections::BTreeSet::new();
        for i in 0..20 {
            let (e, enc) = stream_event("r1", i, at());
            assert_eq!(e.validate(), Ok(()), "event {i} is valid");
            seen.insert((e.account_id.to_string(), e.event_type));
            encodings.insert(format!("{enc:?}/{}", e.account_id));
        }
        assert_eq!(seen.len(), 20, "10 types x 2 accounts in 20 events");
        assert_eq!(encodings.len(), 6, "three encodings for both accounts");
    }

    #[test]
    fn events_are_unique_per_run_and_index_and_round_trip_the_codecs() {
        let (a, _) = stream_event("r1", 1, at());
        let (b, _) = stream_event("r1", 2, at());
        let (c, _) = stream_event("r2", 1, at());
        let d = burst_event("r1", 1, at());
        let ids = [&a.id, &b.id, &c.id, &d.id];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(a.created.nanosecond(), 123_000_000, "millisecond precision");
        assert_eq!(d.event_type, EventType::LicenseCreated);
        assert_eq!(d.account_id.as_str(), ACME);
    }

    #[test]
    fn the_service_decodes_every_record_the_demo_produces() {
        let mut c = Config::load_from(None, &[]).expect("defaults");
        adapt_config(&mut c, Path::new("/tmp/hookrelay-demo-test"), None).expect("adapt");
        let decoder = crate::event::EventDecoder::new(&c.codec).expect("decoder");
        let mut records: Vec<(LicenseEvent, Encoding)> =
            (0..20).map(|i| stream_event("r1", i, at())).collect();
        records.push((burst_event("r1", 7, at()), Encoding::Avro));
        for (event, encoding) in records {
            let bytes = encoding.encode(&event).expect("encode");
            let decoded = decoder
                .decode(&bytes)
                .unwrap_or_else(|e| panic!("{encoding:?} {}: {e}", event.event_type));
            assert_eq!(decoded, event, "{encoding:?} round trip");
        }
    }
}
