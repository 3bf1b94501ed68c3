//! The configuration loader's properties ([`Config::load_from_str`]): defaults, a file and
//! environment variables, validated.

use crate::config::{Config, ConfigError, Password, is_secret_key};
use crate::event::EventDecoder;
use crate::retry::schedule::RetrySchedule;

use super::{Verdict, split_once};

/// Target `config_load`: the text of a configuration file; optionally a NUL byte and then
/// environment variables, one `NAME=value` per line (e.g. `HOOKRELAY__DELIVERY__TIMEOUT=3s`).
/// Bytes that are not UTF-8 become U+FFFD, as if the file had been fixed by hand.
///
/// A configuration that loads re-validates, builds what start-up builds from it (the event
/// decoder, the retry schedule, each tier's retention), renders as TOML that loads back to
/// the same configuration, and shows neither the SMTP password nor a secret Kafka property in
/// `config check` output or `Debug`.
pub fn config_load(data: &[u8]) -> Verdict {
    let (file, env) = split_once(data, 0);
    let text = String::from_utf8_lossy(file);
    let env: Vec<(String, String)> = env
        .map(|env| {
            String::from_utf8_lossy(env)
                .lines()
                .map(|line| match line.split_once('=') {
                    Some((name, value)) => (name.to_owned(), value.to_owned()),
                    None => (line.to_owned(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    match Config::load_from_str(Some(&text), &env) {
        Ok(config) => {
            check_config(&config);
            Verdict::Accepted
        }
        Err(ConfigError::Invalid { key, .. }) => Verdict::rejected(key),
        Err(_) => Verdict::rejected("load"),
    }
}

fn check_config(config: &Config) {
    if let Err(e) = config.validate() {
        panic!("a loaded configuration does not re-validate: {e}");
    }
    if let Err(e) = EventDecoder::new(&config.codec) {
        panic!("a valid configuration's codec section builds no decoder: {e}");
    }
    let delays = config.retry.tiers.iter().map(|t| t.delay).collect();
    if let Err(e) = RetrySchedule::new(delays) {
        panic!("a valid configuration's retry tiers make no schedule: {e}");
    }
    for tier in &config.retry.tiers {
        assert!(config.retry_retention(tier) >= tier.delay);
    }
    // What the service does with durations: add them to clocks and Unix milliseconds, double
    // them (e-mail backoff).
    let now = std::time::Instant::now();
    for (key, duration) in config.durations() {
        assert!(
            now.checked_add(duration).is_some(),
            "{key}: now + {duration:?}"
        );
        assert!(duration.checked_mul(2).is_some(), "{key}: 2 x {duration:?}");
        let ms = i64::try_from(duration.as_millis()).expect("fits Unix milliseconds");
        assert!(
            i64::MAX / 2 > ms,
            "{key}: {duration:?} past a Unix millisecond clock"
        );
    }
    assert!(!config.notify_group_id().trim().is_empty());

    let effective = toml::to_string(config).expect("a loaded configuration renders as TOML");
    match Config::load_from_str(Some(&effective), &[]) {
        Ok(again) => assert_eq!(
            toml::to_string(&again).expect("renders"),
            effective,
            "the effective configuration does not load back to itself"
        ),
        Err(e) => panic!("the effective configuration does not load: {e}\n{effective}"),
    }

    // Secrets: the SMTP password and the Kafka properties `is_secret_key` names.
    let mut blank = config.clone();
    blank.notify.smtp.password = Password::new("");
    let mut secrets = vec![config.notify.smtp.password.expose()];
    for (key, value) in &mut blank.kafka.properties {
        if is_secret_key(key) {
            value.clear();
        }
    }
    secrets.extend(
        config
            .kafka
            .properties
            .iter()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v.as_str()),
    );
    let masked = config.to_masked_toml();
    let elsewhere = toml::to_string(&blank).expect("renders");
    for secret in secrets {
        if secret.is_empty() || "***".contains(secret) || elsewhere.contains(secret) {
            continue;
        }
        assert!(!masked.contains(secret), "config check shows a secret");
    }
    let password = config.notify.smtp.password.expose();
    if !password.is_empty() && !format!("{blank:?}").contains(password) {
        assert!(
            !format!("{config:?}").contains(password),
            "Debug shows the SMTP password"
        );
    }
}
