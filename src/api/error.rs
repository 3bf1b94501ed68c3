//! What the API answers when a request cannot be served: one error type, one JSON shape
//! (`{"error":{"code":…,"message":…,"field":…}}`), and the status each case maps to. A
//! client's mistake is always a 4xx naming what to fix; only our own failures are 5xx, and
//! their details stay in the operator log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is not acceptable; `field` names it.
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// 401: no key, or not a valid one.
    #[error("a valid API key is required: send `Authorization: Bearer hrk_…`")]
    Unauthorized,
    /// 404: unknown, or another account's (the two are not told apart).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// 409: the change lost to a concurrent one, or does not apply to the current state.
    #[error("{message}")]
    Conflict { message: String },
    /// 413: the body exceeds `api.max_body_bytes`.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 429: the key's request rate, or the instance's running replays, are at their limit.
    #[error("{message}")]
    TooMany {
        message: String,
        retry_after_secs: u64,
    },
    /// 503: not ready yet, or Kafka did not take or return a write in time.
    #[error("{message}")]
    Unavailable { message: String },
    /// 500: our own failure; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict {
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Unavailable {
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::TooMany { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable word to decide on: `invalid_request`, `unauthorized`, `not_found`,
    /// `conflict`, `body_too_large`, `rate_limited`, `unavailable`, `internal`.
    pub code: String,
    /// What went wrong and what to do, in a sentence.
    pub message: String,
    /// The request field at fault (`url`, `event_types[2]`, `limit`, …), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %crate::telemetry::ErrorChain(e.as_ref()), "API request failed");
        }
        let status = self.status();
        let field = match &self {
            ApiError::BadRequest { field, .. } => field.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooMany {
                retry_after_secs, ..
            } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(&1).to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let r = e.into_response();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), headers)
    }

    #[tokio::test]
    async fn bad_requests_name_the_field() {
        let (status, json, _) = body(ApiError::bad("url", "url: must be https")).await;
        assert_eq!(status, 400);
        assert_eq!(json["error"]["field"], "url");
        assert_eq!(json["error"]["code"], "invalid_request");
    }

    #[tokio::test]
    async fn internal_errors_do_not_show_their_cause() {
        let cause = std::io::Error::other("disk at /var/lib/secret failed");
        let (status, json, _) = body(ApiError::internal(cause)).await;
        assert_eq!(status, 500);
        assert_eq!(json["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn rate_limits_say_when_to_come_back() {
        let (status, _, headers) = body(ApiError::TooMany {
            message: "slow down".into(),
            retry_after_secs: 0,
        })
        .await;
        assert_eq!(status, 429);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        let (_, _, headers) = body(ApiError::Unauthorized).await;
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    }
}
