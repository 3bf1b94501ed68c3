//! Fetching writer schemas from the schema registry (`codec.schema_registry`) for the
//! consumer: one request per schema id at a time, retried with backoff until the registry
//! gives a definite answer ([`crate::event::registry::interpret_answer`]).
//!
//! The consumer never waits on this: it pauses the partition whose record needs the schema
//! and rewinds to that record, and a task here fetches. When the answer is in the cache, the
//! consumer resumes the partition and the record decodes. A registry outage therefore holds
//! records in Kafka (nothing is lost, nothing is refused for it); the partitions resume by
//! themselves when the registry answers again.

use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use tracing::{info, warn};

use crate::event::registry::{
    RegistryEntry, RegistrySchemas, SchemaRegistryConfig, TransientAnswer, UnusableSchema,
    interpret_answer,
};
use crate::telemetry::ErrorChain;

/// How often the registry must say "schema not found" before records with that id are
/// refused: a registry behind a load balancer may answer from a replica that has not yet
/// seen a schema registered a moment ago.
const NOT_FOUND_CONFIRMATIONS: u32 = 3;

/// Why the registry client could not be built (a configuration problem, reported at start).
#[derive(Debug, thiserror::Error)]
pub enum RegistryClientError {
    #[error("codec.schema_registry.url {url:?} is not a URL")]
    Url {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("codec.schema_registry.ca_file {path}: cannot read it")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("codec.schema_registry.ca_file {path}: no PEM certificate in it")]
    CaCertificate {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("building the schema registry's HTTP client")]
    Client(#[source] reqwest::Error),
}

enum Auth {
    None,
    Basic {
        username: String,
        password: crate::config::Password,
    },
    Bearer(crate::config::Password),
}

/// The registry's HTTP client. `Debug` shows the URL only.
pub struct RegistryClient {
    http: reqwest::Client,
    /// Ends with `/`, so `schemas/ids/{id}` joins below it.
    base: url::Url,
    auth: Auth,
    retry_initial: Duration,
    retry_max: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self, RegistryClientError> {
        let mut text = config.url.trim().to_owned();
        if !text.ends_with('/') {
            text.push('/');
        }
        let base = url::Url::parse(&text).map_err(|source| RegistryClientError::Url {
            url: config.url.clone(),
            source,
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // Credentials go to the configured host only.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")));
        if !config.ca_file.is_empty() {
            let pem =
                std::fs::read(&config.ca_file).map_err(|source| RegistryClientError::CaFile {
                    path: config.ca_file.clone(),
                    source,
                })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                RegistryClientError::CaCertificate {
                    path: config.ca_file.clone(),
                    source,
                }
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(RegistryClientError::Client)?;
        let auth = if !config.username.is_empty() {
            Auth::Basic {
                username: config.username.clone(),
                password: config.password.clone(),
            }
        } else if !config.bearer_token.is_empty() {
            Auth::Bearer(config.bearer_token.clone())
        } else {
            Auth::None
        };
        Ok(Self {
            http,
            base,
            auth,
            retry_initial: config.retry_initial,
            retry_max: config.retry_max.max(config.retry_initial),
        })
    }

    /// One request for `schema_id`'s schema.
    pub async fn fetch_once(
        &self,
        schema_id: u32,
        reader: &Schema,
    ) -> Result<RegistryEntry, TransientAnswer> {
        let url = self
            .base
            .join(&format!("schemas/ids/{schema_id}"))
            .map_err(|e| TransientAnswer(format!("building the request URL: {e}")))?;
        let mut request = self.http.get(url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json",
        );
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        };
        let response = request
            .send()
            .await
            // reqwest's error names the URL, never the credentials.
            .map_err(|e| TransientAnswer(ErrorChain(&e).to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| TransientAnswer(ErrorChain(&e).to_string()))?;
        interpret_answer(schema_id, status, &body, reader)
    }

    /// Fetches `schema_id` until the registry gives a definite answer (retrying transient
    /// failures with backoff, confirming "not found"), and stores it in `cache`.
    pub async fn resolve_into(&self, schema_id: u32, reader: &Schema, cache: &RegistrySchemas) {
        let mut backoff = self.retry_initial;
        let mut not_found = 0;
        let mut failures = 0u32;
        loop {
            match self.fetch_once(schema_id, reader).await {
                Ok(RegistryEntry::Unusable(UnusableSchema::NotFound { .. }))
                    if not_found + 1 < NOT_FOUND_CONFIRMATIONS =>
                {
                    not_found += 1;
                }
                Ok(entry) => {
                    match &entry {
                        RegistryEntry::Usable(_) => {
                            info!(schema_id, "writer schema fetched from the schema registry");
                        }
                        RegistryEntry::Unusable(why) => {
                            warn!(schema_id, reason = why.reason(), error = %why, "the schema registry's answer makes records with this schema id invalid");
                        }
                    }
                    cache.insert(schema_id, entry);
                    return;
                }
                Err(TransientAnswer(why)) => {
                    failures += 1;
                    // Every failure at first, then every tenth: an outage logs, not floods.
                    if failures <= 3 || failures.is_multiple_of(10) {
                        warn!(schema_id, failures, retry_in = ?backoff, error = %why, "the schema registry did not answer usefully; records needing this schema wait in Kafka");
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry_max);
        }
    }
}

/// A shared client, with the cache it fills.
pub type SharedRegistry = Arc<RegistryClient>;
