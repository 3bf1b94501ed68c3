//! Request extractors whose rejections are [`ApiError`]s: a JSON body (413 past the size
//! limit, 400 naming the field that does not fit) and a query string (400 naming the
//! parameter), so no malformed request gets axum's plain-text answers.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;

/// A JSON request body. An empty body reads as `{}` (every body field is optional or
/// defaulted where that makes sense; a missing required one is named).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let limit = state.settings.max_body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit },
                _ => ApiError::bad("body", "the request body could not be read"),
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        parse_json(bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = field_of(&path, &inner.to_string());
        let what = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                return ApiError::bad("body", "the request body is not valid JSON");
            }
            _ => strip_position(&inner.to_string()),
        };
        ApiError::bad(field.clone(), format!("{field}: {what}"))
    })?;
    de.end()
        .map_err(|_| ApiError::bad("body", "the request body has data after the JSON value"))?;
    Ok(value)
}

/// The field a deserialization error is about: the path serde reached, extended by the
/// field named in "missing field `x`" / "unknown field `x`" messages.
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.split(p).nth(1))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (path, Some(name)) if message.starts_with("missing field") => format!("{path}.{name}"),
        (".", None) => "body".to_owned(),
        (path, _) => path.to_owned(),
    }
}

/// serde_json's messages end with " at line L column C"; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A query string. Unknown parameters are refused (a typo should not silently widen a
/// filter).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = field_of(&path, &message);
                ApiError::bad(field.clone(), format!("{field}: {message}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        url: String,
        #[serde(default)]
        event_types: Vec<String>,
        #[serde(default)]
        batching: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_events: u32,
    }

    fn field(json: &str) -> (Option<String>, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::BadRequest { field, message }) => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        assert_eq!(field("{}").0.as_deref(), Some("url"));
        assert_eq!(field(r#"{"url":"x","urll":1}"#).0.as_deref(), Some("urll"));
        assert_eq!(field(r#"{"url":5}"#).0.as_deref(), Some("url"));
        assert_eq!(
            field(r#"{"url":"x","event_types":["a",3]}"#).0.as_deref(),
            Some("event_types[1]")
        );
        assert_eq!(
            field(r#"{"url":"x","batching":{"max_events":-1}}"#)
                .0
                .as_deref(),
            Some("batching.max_events")
        );
        assert_eq!(
            field(r#"{"url":"x","batching":{}}"#).0.as_deref(),
            Some("batching.max_events")
        );
        let (f, m) = field("{not json");
        assert_eq!(f.as_deref(), Some("body"));
        assert!(m.contains("not valid JSON"), "{m}");
        assert!(!field(r#"{"url":5}"#).1.contains("line 1"));
        assert_eq!(field(r#"{"url":"x"} trailing"#).0.as_deref(), Some("body"));
    }
}
