//! The license event on the wire: the Avro record (schemas `license_event.vN`) and the JSON
//! record of the same shape, and their conversion to and from [`LicenseEvent`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339 as Rfc3339Format;

use crate::ids::{AccountId, EventId};
use crate::records::avro::EmbeddedSchema;

use super::body::Rfc3339;
use super::invalid::{InvalidRecord, excerpt};
use super::model::{Amount, EventData, EventType, LicenseEvent};

/// Every released version of the license event schema. Add a new version at the end; the
/// evolution tests then prove every earlier one still decodes.
pub(crate) static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(
    "license_event",
    &[
        (1, include_str!("../../schemas/license_event.v1.avsc")),
        (2, include_str!("../../schemas/license_event.v2.avsc")),
    ],
);

/// The Avro record of the current schema version. Strings are `Cow` so encoding borrows
/// from the event instead of copying it. The serde names must equal the Avro record names:
/// apache-avro's direct deserializer checks them.
#[derive(Serialize, Deserialize)]
#[serde(rename = "LicenseEvent")]
pub(crate) struct AvroEvent<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    event_type: Cow<'a, str>,
    /// `timestamp-millis`.
    created: i64,
    account_id: Cow<'a, str>,
    data: AvroData<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "LicenseData", rename_all = "camelCase")]
struct AvroData<'a> {
    license_key: Cow<'a, str>,
    plan: Cow<'a, str>,
    domain: Option<Cow<'a, str>>,
    activations_used: i32,
    activation_limit: i32,
    expires_at: Option<i64>,
    features: Vec<Cow<'a, str>>,
    previous_plan: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    amount: Option<i64>,
    currency: Option<Cow<'a, str>>,
}

/// The JSON record: the Avro record's shape, with timestamps as RFC 3339 strings (integer
/// Unix milliseconds are accepted too) and optional fields omittable.
#[derive(Serialize, Deserialize)]
pub(crate) struct JsonEvent<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    event_type: Cow<'a, str>,
    created: JsonTime,
    account_id: Cow<'a, str>,
    data: JsonData<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonData<'a> {
    license_key: Cow<'a, str>,
    plan: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<Cow<'a, str>>,
    activations_used: i64,
    activation_limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<JsonTime>,
    #[serde(default)]
    features: Vec<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_plan: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<Cow<'a, str>>,
}

/// A JSON timestamp: RFC 3339 text or Unix milliseconds in, RFC 3339 UTC out; truncated to
/// milliseconds either way, the precision Avro carries.
#[derive(Clone, Copy)]
struct JsonTime(OffsetDateTime);

impl Serialize for JsonTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Rfc3339(self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JsonTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or Unix milliseconds")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<JsonTime, E> {
                OffsetDateTime::parse(s, &Rfc3339Format)
                    .ok()
                    .and_then(|t| from_millis(to_millis(t)))
                    .map(JsonTime)
                    .ok_or_else(|| E::custom("not an RFC 3339 timestamp"))
            }
            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<JsonTime, E> {
                from_millis(ms)
                    .map(JsonTime)
                    .ok_or_else(|| E::custom("timestamp out of range"))
            }
            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<JsonTime, E> {
                i64::try_from(ms)
                    .ok()
                    .and_then(from_millis)
                    .map(JsonTime)
                    .ok_or_else(|| E::custom("timestamp out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Unix milliseconds, rounding down (towards the past) like Avro `timestamp-millis`.
pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    // Every OffsetDateTime (years ±9999) fits an i64 of milliseconds.
    t.unix_timestamp_nanos().div_euclid(1_000_000) as i64
}

/// The UTC instant of Unix milliseconds, if `time` can represent it.
pub(crate) fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// What both wire forms hold, before validation.
struct Parts {
    id: String,
    event_type: String,
    created: OffsetDateTime,
    account_id: String,
    license_key: String,
    plan: String,
    domain: Option<String>,
    activations_used: i64,
    activation_limit: i64,
    expires_at: Option<OffsetDateTime>,
    features: Vec<String>,
    previous_plan: Option<String>,
    reason: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

impl Parts {
    /// Types the fields and applies [`LicenseEvent::validate`].
    fn into_event(self) -> Result<LicenseEvent, InvalidRecord> {
        let event_type = self
            .event_type
            .parse::<EventType>()
            .map_err(|_| InvalidRecord::UnknownType(excerpt(&self.event_type)))?;
        let count = |v: i64, field: &'static str| {
            u32::try_from(v).map_err(|_| InvalidRecord::BadField {
                field,
                problem: "negative or too large",
            })
        };
        let activations_used = count(self.activations_used, "activationsUsed")?;
        let activation_limit = count(self.activation_limit, "activationLimit")?;
        let amount = match (self.amount, self.currency) {
            (Some(minor_units), Some(currency)) => Some(Amount {
                minor_units,
                currency,
            }),
            (None, None) => None,
            _ => {
                return Err(InvalidRecord::BadField {
                    field: "amount",
                    problem: "amount and currency must be given together",
                });
            }
        };
        let event = LicenseEvent {
            id: EventId::new(self.id),
            event_type,
            created: self.created,
            account_id: AccountId::new(self.account_id),
            data: EventData {
                license_key: self.license_key,
                plan: self.plan,
                domain: self.domain,
                activations_used,
                activation_limit,
                expires_at: self.expires_at,
                features: self.features,
                previous_plan: self.previous_plan,
                reason: self.reason,
                amount,
            },
        };
        event.validate()?;
        Ok(event)
    }
}

fn bad_time(field: &'static str) -> InvalidRecord {
    InvalidRecord::BadField {
        field,
        problem: "timestamp out of range",
    }
}

impl AvroEvent<'_> {
    pub(crate) fn into_event(self) -> Result<LicenseEvent, InvalidRecord> {
        let d = self.data;
        Parts {
            id: self.id.into_owned(),
            event_type: self.event_type.into_owned(),
            created: from_millis(self.created).ok_or_else(|| bad_time("created"))?,
            account_id: self.account_id.into_owned(),
            license_key: d.license_key.into_owned(),
            plan: d.plan.into_owned(),
            domain: owned(d.domain),
            activations_used: i64::from(d.activations_used),
            activation_limit: i64::from(d.activation_limit),
            expires_at: d
                .expires_at
                .map(|ms| from_millis(ms).ok_or_else(|| bad_time("expiresAt")))
                .transpose()?,
            features: d.features.into_iter().map(Cow::into_owned).collect(),
            previous_plan: owned(d.previous_plan),
            reason: owned(d.reason),
            amount: d.amount,
            currency: owned(d.currency),
        }
        .into_event()
    }
}

/// A count that does not fit the Avro `int` it is written as.
#[derive(Debug)]
pub(crate) struct CountTooLarge(pub &'static str);

impl<'a> AvroEvent<'a> {
    pub(crate) fn from_event(e: &'a LicenseEvent) -> Result<Self, CountTooLarge> {
        let d = &e.data;
        let int = |v: u32, field| i32::try_from(v).map_err(|_| CountTooLarge(field));
        Ok(AvroEvent {
            id: Cow::Borrowed(e.id.as_str()),
            event_type: Cow::Borrowed(e.event_type.as_str()),
            created: to_millis(e.created),
            account_id: Cow::Borrowed(e.account_id.as_str()),
            data: AvroData {
                license_key: Cow::Borrowed(&d.license_key),
                plan: Cow::Borrowed(&d.plan),
                domain: d.domain.as_deref().map(Cow::Borrowed),
                activations_used: int(d.activations_used, "activationsUsed")?,
                activation_limit: int(d.activation_limit, "activationLimit")?,
                expires_at: d.expires_at.map(to_millis),
                features: d
                    .features
                    .iter()
                    .map(|f| Cow::Borrowed(f.as_str()))
                    .collect(),
                previous_plan: d.previous_plan.as_deref().map(Cow::Borrowed),
                reason: d.reason.as_deref().map(Cow::Borrowed),
                amount: d.amount.as_ref().map(|a| a.minor_units),
                currency: d
                    .amount
                    .as_ref()
                    .map(|a| Cow::Borrowed(a.currency.as_str())),
            },
        })
    }
}

impl JsonEvent<'_> {
    pub(crate) fn into_event(self) -> Result<LicenseEvent, InvalidRecord> {
        let d = self.data;
        Parts {
            id: self.id.into_owned(),
            event_type: self.event_type.into_owned(),
            created: self.created.0,
            account_id: self.account_id.into_owned(),
            license_key: d.license_key.into_owned(),
            plan: d.plan.into_owned(),
            domain: owned(d.domain),
            activations_used: d.activations_used,
            activation_limit: d.activation_limit,
            expires_at: d.expires_at.map(|t| t.0),
            features: d.features.into_iter().map(Cow::into_owned).collect(),
            previous_plan: owned(d.previous_plan),
            reason: owned(d.reason),
            amount: d.amount,
            currency: owned(d.currency),
        }
        .into_event()
    }
}

impl<'a> JsonEvent<'a> {
    pub(crate) fn from_event(e: &'a LicenseEvent) -> Self {
        let d = &e.data;
        JsonEvent {
            id: Cow::Borrowed(e.id.as_str()),
            event_type: Cow::Borrowed(e.event_type.as_str()),
            created: JsonTime(e.created),
            account_id: Cow::Borrowed(e.account_id.as_str()),
            data: JsonData {
                license_key: Cow::Borrowed(&d.license_key),
                plan: Cow::Borrowed(&d.plan),
                domain: d.domain.as_deref().map(Cow::Borrowed),
                activations_used: i64::from(d.activations_used),
                activation_limit: i64::from(d.activation_limit),
                expires_at: d.expires_at.map(JsonTime),
                features: d
                    .features
                    .iter()
                    .map(|f| Cow::Borrowed(f.as_str()))
                    .collect(),
                previous_plan: d.previous_plan.as_deref().map(Cow::Borrowed),
                reason: d.reason.as_deref().map(Cow::Borrowed),
                amount: d.amount.as_ref().map(|a| a.minor_units),
                currency: d
                    .amount
                    .as_ref()
                    .map(|a| Cow::Borrowed(a.currency.as_str())),
            },
        }
    }
}
