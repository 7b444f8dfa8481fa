//! Selections: which events a subscriber receives — the topics it named, the patterns it
//! gave (Mercure URI templates, `*`), and which private events it is allowed to see.

use std::any::Any;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use ssehub_core::{Event, Topic};

/// A topic pattern. Implemented by the Mercure selectors; the hub only asks "does it match".
pub trait TopicMatcher: Send + Sync + fmt::Debug {
    fn matches(&self, topic: &str) -> bool;
}

/// A protocol's hook on one subscription. The hub calls [`changed`](Self::changed) after the
/// subscriber is registered (`active`) and after it is unregistered, outside its lock; it
/// knows nothing of what the hook does. This is how a protocol above the hub (Mercure's
/// subscription events) reacts to subscriptions without the hub naming it.
pub trait SubscriptionHook: Send + Sync + fmt::Debug + 'static {
    fn changed(&self, hub: &Arc<crate::hub::Hub>, active: bool);
    /// The hook as `Any`, so its protocol can find its own data again (the Mercure
    /// subscriptions API lists the subscribers it hooked).
    fn as_any(&self) -> &dyn Any;
}

/// Matches one topic exactly.
#[derive(Debug, Clone)]
pub struct Exact(pub String);

impl TopicMatcher for Exact {
    fn matches(&self, topic: &str) -> bool {
        self.0 == topic
    }
}

/// Matches every topic (Mercure's `*`).
#[derive(Debug, Clone, Copy)]
pub struct AnyTopic;

impl TopicMatcher for AnyTopic {
    fn matches(&self, _topic: &str) -> bool {
        true
    }
}

/// Which private events a subscriber may receive.
#[derive(Debug, Clone, Default)]
pub enum PrivateAccess {
    /// None (anonymous subscribers, and the native API without auth).
    #[default]
    Nothing,
    /// Those with a topic matching one of these (the token's grants).
    Matching(Vec<Arc<dyn TopicMatcher>>),
}

#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Topics named exactly. The hub indexes subscribers by these, so fan-out to them costs
    /// nothing per unrelated event.
    pub topics: Vec<Topic>,
    /// Patterns, checked against every published event's topics.
    pub patterns: Vec<Arc<dyn TopicMatcher>>,
    pub private: PrivateAccess,
    /// When the stream must end, in milliseconds since the Unix epoch: the token's `exp`
    /// (or the configured stream lifetime). Checked by the hub's expiry tick.
    /// Non-zero so the field takes 8 bytes (every subscriber has a selection); see
    /// [`Selection::set_deadline`].
    pub deadline: Option<NonZeroU64>,
    /// Set by the protocol that built the selection when it wants to hear of the
    /// subscription's start and end (the Mercure endpoint: subscription events and API).
    /// `None` costs the hub nothing.
    pub hook: Option<Arc<dyn SubscriptionHook>>,
}

impl Selection {
    /// The selection of the native API: these topics, nothing private.
    pub fn topics(topics: Vec<Topic>) -> Selection {
        Selection {
            topics,
            ..Selection::default()
        }
    }

    /// Sets when the stream must end (ms since the Unix epoch; 0 counts as already past).
    pub fn set_deadline(&mut self, deadline: Option<u64>) {
        self.deadline = deadline.map(|ms| NonZeroU64::new(ms).unwrap_or(NonZeroU64::MIN));
    }

    /// The topics the subscriber can receive events on, for [`ssehub_core::Store::locate_for`]:
    /// the named topics, or `None` (any topic) when there are patterns.
    pub fn scope(&self) -> Option<&[Topic]> {
        self.patterns.is_empty().then_some(&self.topics[..])
    }

    /// Whether the subscriber receives `event`.
    pub fn selects(&self, event: &Event) -> bool {
        let named = event.topics.iter().any(|t| {
            self.topics.contains(t) || self.patterns.iter().any(|p| p.matches(t.as_str()))
        });
        named && self.may_see(event)
    }

    /// Whether a subscriber that names one of `event`'s topics may receive it: always for
    /// public events; for private ones, when a grant matches one of its topics.
    pub fn may_see(&self, event: &Event) -> bool {
        if !event.private {
            return true;
        }
        match &self.private {
            PrivateAccess::Nothing => false,
            PrivateAccess::Matching(grants) => event
                .topics
                .iter()
                .any(|t| grants.iter().any(|g| g.matches(t.as_str()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssehub_core::{EventId, NewEvent};

    fn event(topics: &[&str], private: bool) -> Event {
        let mut new = NewEvent::new(topics.iter().map(|t| Topic::new(t).unwrap()).collect(), "x");
        new.private = private;
        Event::assign(EventId::new(1, 0), new)
    }

    #[test]
    fn selects_by_topic_pattern_and_grant() {
        let plain = Selection::topics(vec![Topic::new("a").unwrap()]);
        assert!(plain.selects(&event(&["a"], false)));
        assert!(plain.selects(&event(&["b", "a"], false)));
        assert!(!plain.selects(&event(&["b"], false)));
        assert!(
            !plain.selects(&event(&["a"], true)),
            "private needs a grant"
        );

        let granted = Selection {
            private: PrivateAccess::Matching(vec![Arc::new(Exact("a".into()))]),
            ..plain.clone()
        };
        assert!(granted.selects(&event(&["a"], true)));
        assert!(!granted.selects(&event(&["b"], true)));

        let everything = Selection {
            patterns: vec![Arc::new(AnyTopic)],
            ..Selection::default()
        };
        assert!(everything.selects(&event(&["z"], false)));
        assert!(!everything.selects(&event(&["z"], true)));
    }
}
