//! Topics: the names subscribers select and publishers address.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Longest topic name accepted, in bytes. Long enough for any URL a Mercure client uses as a
/// topic, short enough that a hostile query cannot make the hub hold megabytes per name.
pub const MAX_TOPIC_LEN: usize = 512;

/// A validated topic name: 1..=[`MAX_TOPIC_LEN`] bytes, no whitespace, no control
/// characters, no comma (a comma separates topics in `?topic=a,b`). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

/// Why a topic name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    Empty,
    TooLong,
    /// The name holds a character that may not appear in a topic.
    BadChar(char),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => f.write_str("topic is empty"),
            TopicError::TooLong => write!(f, "topic is longer than {MAX_TOPIC_LEN} bytes"),
            TopicError::BadChar(c) => write!(f, "topic contains the character {c:?}"),
        }
    }
}

impl std::error::Error for TopicError {}

impl Topic {
    pub fn new(name: &str) -> Result<Topic, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong);
        }
        if let Some(c) = name
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || *c == ',')
        {
            return Err(TopicError::BadChar(c));
        }
        Ok(Topic(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(Topic::new("news").is_ok());
        assert!(Topic::new("https://example.com/books/{id}").is_ok());
        assert!(Topic::new("user-123").is_ok());
        assert_eq!(Topic::new(""), Err(TopicError::Empty));
        assert_eq!(Topic::new("a b"), Err(TopicError::BadChar(' ')));
        assert_eq!(Topic::new("a,b"), Err(TopicError::BadChar(',')));
        assert_eq!(Topic::new("a\nb"), Err(TopicError::BadChar('\n')));
        assert_eq!(Topic::new("a\u{0}"), Err(TopicError::BadChar('\0')));
        assert_eq!(
            Topic::new(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong)
        );
    }
}
