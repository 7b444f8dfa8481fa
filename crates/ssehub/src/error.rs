//! The one error type of the HTTP edge: renders `{"error": ..., "field": ...}`. The native
//! API answers with it; the Mercure endpoint turns the ones shared code returns (opening a
//! stream) into its own text errors.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use ssehub_core::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<&'static str>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn field(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field),
            ..ApiError::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// A 5xx: the client learns only that it failed; the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> ApiError {
        ApiError::new(e.status, e.message)
    }
}

impl ApiError {
    /// The JSON body of the answer.
    pub fn body(&self) -> String {
        serde_json::to_string(&Body {
            error: &self.message,
            field: self.field,
        })
        .expect("error body serializes")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            field: self.field,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A plain-text error answer: the message and a newline. How the Mercure endpoint answers
/// its errors, and the publish rate limit on it.
pub fn text_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The answer to a publish while the store's disk is full.
pub(crate) const DISK_FULL: &str =
    "the event store's disk is full; nothing was published (retry once space is freed)";

/// True when the store failed for want of space (ENOSPC, or EDQUOT for a quota): a `503`
/// the publisher can retry, not an internal error. The log store truncates a failed
/// append, so the next one that fits succeeds.
pub(crate) fn disk_full(e: &StoreError) -> bool {
    use std::io::ErrorKind;
    matches!(e, StoreError::Io(io) if matches!(io.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
}
