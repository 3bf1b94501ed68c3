//! Who is calling: the bearer API key of a request, checked against the materialized keys
//! (constant-time digest comparison), its scope (one account, or the operator), and its
//! request rate (a token bucket per key on this instance).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::batch::ratelimit::TokenBucket;
use crate::ids::AccountId;
use crate::records::api_key::key_id_of_token;
use crate::subscriptions::Endpoint;

use super::ApiState;
use super::error::ApiError;

/// What a key may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One account's endpoints, logs and replays.
    Account(AccountId),
    /// Every account.
    Operator,
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub scope: Scope,
}

impl Caller {
    /// True when the caller may see and change `endpoint`. Callers that may not get a 404,
    /// exactly as for an id that does not exist.
    pub fn may_access(&self, endpoint: &Endpoint) -> bool {
        self.may_access_account(&endpoint.account_id)
    }

    pub fn may_access_account(&self, account: &AccountId) -> bool {
        match &self.scope {
            Scope::Operator => true,
            Scope::Account(own) => own == account,
        }
    }

    /// The account a request acts on: an account key's own (a different `requested` one is
    /// a 400: keys never act on other accounts), or the one an operator names.
    pub fn account_for(
        &self,
        requested: Option<&str>,
        field: &'static str,
    ) -> Result<AccountId, ApiError> {
        match (&self.scope, requested) {
            (Scope::Account(own), None) => Ok(own.clone()),
            (Scope::Account(own), Some(r)) if r == own.as_str() => Ok(own.clone()),
            (Scope::Account(_), Some(_)) => Err(ApiError::bad(
                field,
                format!("{field}: an account key acts on its own account only; leave it out"),
            )),
            (Scope::Operator, Some(r)) if !r.trim().is_empty() => Ok(AccountId::from(r)),
            (Scope::Operator, _) => Err(ApiError::bad(
                field,
                format!("{field}: an operator key must name the account"),
            )),
        }
    }

    /// Who wrote a change, as records carry it (`api:<key id>`).
    pub fn by(&self) -> String {
        format!("api:{}", self.key_id)
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(ApiError::Unauthorized)?;
        let key_id = key_id_of_token(token).ok_or(ApiError::Unauthorized)?;
        if !state.api.keys_ready() {
            return Err(ApiError::unavailable(
                "the API keys are still loading; retry in a few seconds",
            ));
        }
        let key = state
            .api
            .store()
            .key(&key_id)
            .map_err(ApiError::internal)?
            .ok_or(ApiError::Unauthorized)?;
        if !key.accepts(token) {
            return Err(ApiError::Unauthorized);
        }
        if let Err(wait) = state.limiter.take(&key_id, Instant::now()) {
            state.metrics.api_rate_limited.inc();
            return Err(ApiError::TooMany {
                message: "this API key exceeded its request rate; retry later".to_owned(),
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            });
        }
        let scope = match key.account_id {
            Some(account) => Scope::Account(AccountId::new(account)),
            None => Scope::Operator,
        };
        Ok(Caller { key_id, scope })
    }
}

/// Token buckets per key id. Forgets keys idle long enough to have a full bucket again, so
/// memory follows the keys in use.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (TokenBucket, Instant)>>,
}

/// Buckets kept at most before idle ones are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        RateLimiter {
            rate: rate_per_sec,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `key` at `now`, or says how long until one is free.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT {
            let refill = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, (_, last)| now.saturating_duration_since(*last) < refill);
        }
        let (bucket, last) = buckets
            .entry(key.to_owned())
            .or_insert_with(|| (TokenBucket::new(self.rate, self.burst), now));
        *last = now;
        bucket.try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_bucket() {
        let limiter = RateLimiter::new(1.0, 2);
        let t0 = Instant::now();
        assert!(limiter.take("a", t0).is_ok());
        assert!(limiter.take("a", t0).is_ok());
        let wait = limiter.take("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(limiter.take("b", t0).is_ok(), "another key is not slowed");
        assert!(limiter.take("a", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn account_keys_act_on_their_own_account_only() {
        let caller = Caller {
            key_id: "key_1".into(),
            scope: Scope::Account(AccountId::from("acct_a")),
        };
        assert_eq!(
            caller.account_for(None, "account_id").unwrap().as_str(),
            "acct_a"
        );
        assert!(caller.account_for(Some("acct_a"), "account_id").is_ok());
        assert!(caller.account_for(Some("acct_b"), "account_id").is_err());
        assert!(caller.may_access_account(&AccountId::from("acct_a")));
        assert!(!caller.may_access_account(&AccountId::from("acct_b")));
        let operator = Caller {
            key_id: "key_2".into(),
            scope: Scope::Operator,
        };
        assert!(operator.account_for(None, "account_id").is_err());
        assert_eq!(
            operator
                .account_for(Some("acct_b"), "account_id")
                .unwrap()
                .as_str(),
            "acct_b"
        );
        assert!(operator.may_access_account(&AccountId::from("acct_b")));
        assert_eq!(operator.by(), "api:key_2");
    }
}
