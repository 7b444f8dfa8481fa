//! The crate's one error type: opaque, with `is_*()` predicates for what went wrong.

use std::fmt;

/// Anything that can go wrong talking to a hub.
///
/// Ask what kind of failure it is with the `is_*()` predicates; [`Error::status`],
/// [`Error::hub_error`] and [`Error::hub_field`] give the details of a refused request.
/// `Display` says what failed; the lower-level cause, when there is one, is the
/// [`std::error::Error::source`] (print the chain, e.g. with anyhow's `{:#}`).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    /// The lower-level error, when there is one (the HTTP transport, JSON decoding).
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug)]
enum Kind {
    /// A bad hub URL or request parameter, found before anything was sent.
    Builder(String),
    /// The hub answered with a status other than the expected one.
    Status {
        status: u16,
        /// The `error` member of the hub's JSON error body.
        error: Option<String>,
        /// The `field` member of the hub's JSON error body.
        field: Option<String>,
    },
    /// A 200 answer to a subscription whose Content-Type is not `text/event-stream`.
    ContentType(Option<String>),
    /// Connecting, sending or reading failed, or the hub ended a stream before it was healthy.
    Network(String),
    /// Nothing arrived within the configured time.
    Timeout,
    /// A 200 answer whose body is not what the API documents.
    Decode,
}

impl Error {
    fn new(kind: Kind) -> Error {
        Error {
            inner: Box::new(Inner { kind, source: None }),
        }
    }

    fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn builder(what: impl Into<String>) -> Error {
        Error::new(Kind::Builder(what.into()))
    }

    pub(crate) fn refused(status: u16, error: Option<String>, field: Option<String>) -> Error {
        Error::new(Kind::Status {
            status,
            error,
            field,
        })
    }

    pub(crate) fn content_type(found: Option<String>) -> Error {
        Error::new(Kind::ContentType(found))
    }

    pub(crate) fn network(what: impl Into<String>) -> Error {
        Error::new(Kind::Network(what.into()))
    }

    pub(crate) fn timeout() -> Error {
        Error::new(Kind::Timeout)
    }

    pub(crate) fn decode(source: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::new(Kind::Decode).with_source(source)
    }

    /// Classifies a transport error from the HTTP client.
    pub(crate) fn transport(e: reqwest::Error) -> Error {
        if e.is_builder() {
            Error::builder("the request could not be built").with_source(e)
        } else if e.is_timeout() {
            Error::timeout().with_source(e)
        } else if e.is_connect() {
            Error::network("could not connect to the hub").with_source(e)
        } else {
            Error::network("the connection to the hub failed").with_source(e)
        }
    }

    /// A bad hub URL or request parameter, found before anything was sent.
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, Kind::Builder(_))
    }

    /// The hub answered with an unexpected status; see [`Error::status`].
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status { .. })
    }

    /// A subscription's 200 answer was not `text/event-stream`.
    pub fn is_content_type(&self) -> bool {
        matches!(self.inner.kind, Kind::ContentType(_))
    }

    /// Connecting, sending or reading failed.
    pub fn is_network(&self) -> bool {
        matches!(self.inner.kind, Kind::Network(_))
    }

    /// Nothing arrived within the configured time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout)
    }

    /// A 200 answer's body was not what the API documents.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, Kind::Decode)
    }

    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self.inner.kind {
            Kind::Status { status, .. } => Some(status),
            _ => None,
        }
    }

    /// What the hub said was wrong (the `error` member of its JSON answer).
    pub fn hub_error(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::Status { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// Which request field the hub blamed (the `field` member of its JSON answer).
    pub fn hub_field(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::Status { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(what) => write!(f, "invalid request: {what}"),
            Kind::Status {
                status,
                error,
                field,
            } => {
                write!(f, "the hub answered {status}")?;
                if let Some(error) = error {
                    write!(f, ": {error}")?;
                }
                if let Some(field) = field {
                    write!(f, " (field `{field}`)")?;
                }
                Ok(())
            }
            Kind::ContentType(Some(found)) => {
                write!(
                    f,
                    "the hub answered with Content-Type {found:?}, not text/event-stream"
                )
            }
            Kind::ContentType(None) => {
                f.write_str("the hub answered without a Content-Type, not text/event-stream")
            }
            Kind::Network(what) => f.write_str(what),
            Kind::Timeout => f.write_str("timed out waiting for the hub"),
            Kind::Decode => f.write_str("the hub's answer could not be decoded"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_shows_the_hubs_words() {
        let e = Error::refused(400, Some("missing topic".into()), Some("topic".into()));
        assert!(e.is_status());
        assert!(!e.is_network());
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.hub_error(), Some("missing topic"));
        assert_eq!(e.hub_field(), Some("topic"));
        assert_eq!(
            e.to_string(),
            "the hub answered 400: missing topic (field `topic`)"
        );
    }

    #[test]
    fn error_is_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
