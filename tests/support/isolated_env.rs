//! The settings every integration test, fault scenario and load benchmark starts from, as
//! `HOOKRELAY__…` variables: its own topics and consumer group under one prefix, so runs
//! sharing a broker never see each other's records; a single broker's replication factor;
//! retry tiers with the given delays; loopback receivers allowed and no per-endpoint rate
//! limit. Each user adds what is particular to it. Included with `#[path]` by `tests/it`,
//! `tests/faults` and `benches/load.rs`, which are separate crates.

/// `tier_delays` are config durations (`"60s"`, `"1h"`); their topics are `<prefix>-retry-<i>`.
pub fn isolated_env(
    prefix: &str,
    bootstrap: &str,
    tier_delays: &[String],
) -> Vec<(String, String)> {
    let p = prefix;
    let tiers: Vec<String> = tier_delays
        .iter()
        .enumerate()
        .map(|(i, delay)| format!(r#"{{topic="{p}-retry-{i}",delay="{delay}"}}"#))
        .collect();
    [
        ("KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_owned()),
        ("KAFKA__GROUP_ID", format!("{p}-group")),
        ("TOPICS__REPLICATION_FACTOR", "1".to_owned()),
        ("TOPICS__EVENTS", format!("{p}-events")),
        ("TOPICS__SUBSCRIPTIONS", format!("{p}-subs")),
        ("TOPICS__INVALID", format!("{p}-invalid")),
        ("TOPICS__DEAD_LETTER", format!("{p}-dlq")),
        ("TOPICS__ATTEMPTS", format!("{p}-attempts")),
        ("TOPICS__NOTIFICATIONS", format!("{p}-notifications")),
        ("TOPICS__REQUESTS", format!("{p}-requests")),
        ("TOPICS__API_KEYS", format!("{p}-api-keys")),
        ("RETRY__TIERS", format!("[{}]", tiers.join(","))),
        ("DELIVERY__SSRF_ALLOWLIST", r#"["127.0.0.0/8"]"#.to_owned()),
        ("DELIVERY__ENDPOINT_RATE_LIMIT", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("HOOKRELAY__{k}"), v))
    .collect()
}
