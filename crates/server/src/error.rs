//! The one error type of a request, and its JSON body `{code, reason, message}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code, repeated.
    pub code: u16,
    /// Machine-readable reason, e.g. `InvalidBody`, `UnknownField`, `InvalidName`,
    /// `NotFound`, `Forbidden`, `Unauthenticated`, `PayloadTooLarge`,
    /// `AlreadyExists`, `Conflict`, `Invalid` (the API server's validation),
    /// `TooManyRequests`, `Overloaded`, `Timeout`.
    pub reason: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Why a request failed. Client mistakes are 4xx; only our own or the API
/// server's failures are 5xx.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    UnknownField(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotReady(String),
    /// Too many bearer tokens the server has not seen lately are being
    /// checked; 429 with `Retry-After`.
    #[error("too many new bearer tokens are being checked; retry in {retry_after_seconds}s")]
    TooManyTokenReviews { retry_after_seconds: u64 },
    /// The server handles as many requests as it may at once; 503 with
    /// `Retry-After`.
    #[error("the server is handling as many requests as it may; retry in {retry_after_seconds}s")]
    Overloaded { retry_after_seconds: u64 },
    /// The caller has as many watch streams open as one caller may; 429
    /// with `Retry-After`.
    #[error(
        "you have {limit} watch streams open, the most one caller may; close one or retry in {retry_after_seconds}s"
    )]
    TooManyWatches {
        limit: usize,
        retry_after_seconds: u64,
    },
    /// The request took longer than the server's request timeout.
    #[error("the request did not finish within {0:?}")]
    Timeout(std::time::Duration),
    /// The API server refused or failed a request we made for the caller;
    /// its status code and reason are passed on.
    #[error("{message}")]
    Upstream {
        code: u16,
        reason: String,
        message: String,
    },
    /// We could not talk to the API server at all.
    #[error("kubernetes API: {0}")]
    Kube(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::InvalidBody(_)
            | Self::UnknownField(_)
            | Self::InvalidName(_)
            | Self::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotReady(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyTokenReviews { .. } | Self::TooManyWatches { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { code, .. } => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Kube(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Unauthenticated(_) => "Unauthenticated",
            Self::Forbidden(_) => "Forbidden",
            Self::InvalidBody(_) => "InvalidBody",
            Self::UnknownField(_) => "UnknownField",
            Self::InvalidName(_) => "InvalidName",
            Self::InvalidQuery(_) => "InvalidQuery",
            Self::NotFound(_) => "NotFound",
            Self::PayloadTooLarge { .. } => "PayloadTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::NotReady(_) => "NotReady",
            Self::TooManyTokenReviews { .. } => "TooManyRequests",
            Self::TooManyWatches { .. } => "TooManyWatches",
            Self::Overloaded { .. } => "Overloaded",
            Self::Timeout(_) => "Timeout",
            Self::Upstream { reason, .. } => reason,
            Self::Kube(_) => "UpstreamUnavailable",
            Self::Internal(_) => "InternalError",
        }
    }

    /// Seconds a client should wait before trying again, if it should.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyTokenReviews {
                retry_after_seconds,
            }
            | Self::Overloaded {
                retry_after_seconds,
            }
            | Self::TooManyWatches {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.status().as_u16(),
            reason: self.reason().to_owned(),
            message: self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Shedding is expected under load: not worth a log line each.
        if self.status().is_server_error() && !matches!(self, Self::Overloaded { .. }) {
            tracing::warn!(error = %self, "request failed");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<kube::Error> for ApiError {
    fn from(err: kube::Error) -> Self {
        match err {
            // The API server answered: its verdict is the caller's answer
            // (403 from impersonation, 404, 409, 422 from schema/CEL, ...).
            kube::Error::Api(status) => {
                let reason = if status.reason.is_empty() {
                    "Upstream".to_owned()
                } else {
                    status.reason.clone()
                };
                Self::Upstream {
                    code: status.code,
                    reason,
                    message: status.message.clone(),
                }
            }
            other => Self::Kube(other.to_string()),
        }
    }
}
