//! The hub's topic table as a whole: what `/topics` shows, the bound on its size
//! (`max_hub_topics`) and forgetting the topics nobody follows.

use serde::Serialize;
use ssehub_core::{wire_id_text, EventId, Topic};

use super::{Hub, State, TopicEntry};
use crate::metrics::Metrics;

/// A topic as `/topics` shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TopicInfo {
    pub topic: String,
    pub subscribers: usize,
    #[serde(rename = "lastEventId")]
    pub last_event_id: Option<String>,
    pub closed: bool,
}

impl Hub {
    pub fn is_closed(&self, topic: &Topic) -> bool {
        self.lock().topics.get(topic).is_some_and(|e| e.closed)
    }

    /// Topics with their subscribers, cluster-wide in cluster mode (other nodes' counts as
    /// their engine last reported them).
    pub fn topics(&self) -> Vec<TopicInfo> {
        let mut list = self.local_topics();
        if let Some(engine) = self.engine.get() {
            for info in &mut list {
                info.subscribers += engine.remote_subscribers(&info.topic);
            }
        }
        list
    }

    /// Topics with this node's own subscribers only (for `/metrics` and the engine).
    pub fn local_topics(&self) -> Vec<TopicInfo> {
        let state = self.lock();
        let mut list: Vec<TopicInfo> = state
            .topics
            .iter()
            .map(|(t, e)| Self::info(t.as_str(), Some(e)))
            .collect();
        list.sort_by(|a, b| a.topic.cmp(&b.topic));
        list
    }

    pub fn topic(&self, topic: &str) -> TopicInfo {
        let mut info = Self::info(topic, self.lock().topics.get(topic));
        if let Some(engine) = self.engine.get() {
            info.subscribers += engine.remote_subscribers(topic);
        }
        info
    }

    fn info(topic: &str, entry: Option<&TopicEntry>) -> TopicInfo {
        TopicInfo {
            topic: topic.to_owned(),
            subscribers: entry.map_or(0, |e| e.subscribers.len()),
            last_event_id: entry.and_then(|e| {
                let (id, custom) = e.last_id.as_ref()?;
                Some(wire_id_text(*id, custom.as_ref()))
            }),
            closed: entry.is_some_and(|e| e.closed),
        }
    }

    /// Number of topics the hub knows (with subscribers or a last event).
    pub fn topic_count(&self) -> usize {
        self.lock().topics.len()
    }

    /// Forgets the topics nobody follows whose last event has left the history, so that
    /// the hub's memory and `/topics` do not grow with every topic ever published. Kept:
    /// topics with subscribers, presence watchers or remote subscribers, closed topics
    /// (they stay closed until published again), and topics with a retained event.
    /// Returns how many were forgotten. One pass over the topics under the hub's lock.
    pub fn forget_idle_topics(&self) -> usize {
        // Every retained event is after this position (in every retention class).
        let start = self.store.replay_start();
        let mut state = self.lock();
        Self::forget_idle(&mut state, start)
    }

    fn forget_idle(state: &mut State, start: EventId) -> usize {
        let before = state.topics.len();
        state.topics.retain(|_, entry| {
            !entry.subscribers.is_empty()
                || entry.watchers > 0
                || entry.remote > 0
                || entry.closed
                || entry.last_id.as_ref().is_some_and(|(id, _)| *id > start)
        });
        before - state.topics.len()
    }

    /// Whether `topics` fit in the topic table (`max_hub_topics`). At the bound it first
    /// forgets idle topics — once the table has grown by a tenth of the bound since the last
    /// such sweep, or a second has passed, so a sweep's cost is spread over many new topics
    /// and no client can make the hub sweep at every request; a refusal is counted. Below the
    /// bound it costs one comparison.
    pub(super) fn admit(&self, state: &mut State, topics: &[Topic]) -> bool {
        let limit = self.config.max_hub_topics;
        if state.topics.len() + topics.len() <= limit {
            return true;
        }
        let fits = |state: &State| {
            let new = topics
                .iter()
                .filter(|t| !state.topics.contains_key(*t))
                .count();
            new == 0 || state.topics.len() + new <= limit
        };
        if fits(state) {
            return true;
        }
        let now = std::time::Instant::now();
        let due = state.swept_at.is_none_or(|(at, after)| {
            now.duration_since(at) >= std::time::Duration::from_secs(1)
                || state.topics.len() >= after + (limit / 10).max(1)
        });
        if due {
            Self::forget_idle(state, self.store.replay_start());
            state.swept_at = Some((now, state.topics.len()));
            if fits(state) {
                return true;
            }
        }
        Metrics::add(&self.metrics.topics_refused, 1);
        false
    }

    /// The refusal of a publish or subscribe at `max_hub_topics`.
    pub fn topic_limit_message(&self) -> String {
        format!(
            "the hub keeps at most {} topics (max_hub_topics) and this would add another; \
             topics with neither subscribers nor retained events are forgotten",
            self.config.max_hub_topics
        )
    }
}
