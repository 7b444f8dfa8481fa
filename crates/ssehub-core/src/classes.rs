//! Retention classes: topics kept for different times. A [`ClassedStore`] routes each event
//! to one of several stores by its topics — the first [`TopicPattern`] rule (in order) that
//! matches any of the event's topics, else the default class — and shows them to the hub as
//! one history: one id sequence, reads merged by id, `Last-Event-ID` judged against the
//! classes a subscriber's topics live in.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::event::{Event, NewEvent};
use crate::id::EventId;
use crate::store::{DurableCallback, Locate, ReadBatch, Store, StoreError, StoreStats, SyncStats};
use crate::topic::{Topic, MAX_TOPIC_LEN};

/// A topic pattern of a retention rule. Topics and patterns are split at `/` into segments;
/// a `*` matches any run of characters within one segment (`prices/*`, `price-*/eu`), and a
/// last segment `**` matches one or more segments (`chat/**` matches `chat/a` and
/// `chat/a/b`, not `chat`). Anything else matches itself.
#[derive(Clone, PartialEq, Eq)]
pub struct TopicPattern {
    text: Box<str>,
    /// The last segment was `**` (and is not in `segments`).
    rest: bool,
    segments: Vec<Box<str>>,
}

/// Why a topic pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

impl TopicPattern {
    pub fn new(text: &str) -> Result<TopicPattern, PatternError> {
        let fail = |why: String| Err(PatternError(why));
        if text.is_empty() {
            return fail("the pattern is empty".into());
        }
        if text.len() > MAX_TOPIC_LEN {
            return fail(format!("the pattern is longer than {MAX_TOPIC_LEN} bytes"));
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || *c == ',')
        {
            return fail(format!("the pattern contains the character {c:?}"));
        }
        let mut segments: Vec<Box<str>> = text.split('/').map(Into::into).collect();
        let rest = segments.last().is_some_and(|s| &**s == "**");
        if rest {
            segments.pop();
        }
        if segments.iter().any(|s| s.contains("**")) {
            return fail(format!(
                "{text:?}: `**` may only be the whole last segment (as in `chat/**`)"
            ));
        }
        Ok(TopicPattern {
            text: text.into(),
            rest,
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, topic: &str) -> bool {
        let mut parts = topic.split('/');
        for segment in &self.segments {
            match parts.next() {
                Some(part) if glob(segment, part) => {}
                _ => return false,
            }
        }
        match parts.next() {
            None => !self.rest,
            Some(_) => self.rest,
        }
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, tail)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut text) = text.strip_prefix(head) else {
        return false;
    };
    let mut pieces: Vec<&str> = tail.split('*').collect();
    let last = pieces.pop().unwrap_or("");
    for piece in pieces {
        match text.find(piece) {
            Some(at) => text = &text[at + piece.len()..],
            None => return false,
        }
    }
    text.ends_with(last)
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

/// Several stores, each with its own retention, shown as one. Class 0 is the default; class
/// `i + 1` holds the events routed by rule `i`. Every class must implement
/// [`Store::append_after`] (the memory and log stores do).
///
/// - **Routing**: an event goes to the class of the first rule matching any of its topics,
///   else to the default. A multi-topic event is stored once, so its other topics' events
///   follow that class's retention.
/// - **Ids**: one increasing sequence over all classes: the classed store keeps the last id
///   handed out (at start the highest of every class's newest id and floor) and appends with
///   [`Store::append_after`] under one lock.
/// - **Reads** merge the classes by id in pages (see [`ClassedStore::read`]).
/// - **Locate** judges a position against the floors of the classes the subscriber's topics
///   map to ([`Store::locate_for`]); for a pattern subscription, against every class.
pub struct ClassedStore {
    classes: Vec<Arc<dyn Store>>,
    /// `patterns[i]` routes to `classes[i + 1]`.
    patterns: Vec<TopicPattern>,
    /// The last id handed out. Held across an append so that ids increase in every class
    /// and overall, and so that a read knows which ids are surely in their class.
    last: Mutex<EventId>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClassedStore {
    /// A store over `default` and one class per rule, in rule order.
    pub fn new(
        default: Arc<dyn Store>,
        rules: Vec<(TopicPattern, Arc<dyn Store>)>,
    ) -> ClassedStore {
        let mut classes = vec![default];
        let mut patterns = Vec::with_capacity(rules.len());
        for (pattern, store) in rules {
            patterns.push(pattern);
            classes.push(store);
        }
        let last = classes
            .iter()
            .map(|c| c.floor().max(c.stats().newest.unwrap_or(EventId::ZERO)))
            .max()
            .unwrap_or(EventId::ZERO);
        ClassedStore {
            classes,
            patterns,
            last: Mutex::new(last),
        }
    }

    /// The class (0 = default) a topic's own events go to.
    pub fn class_of_topic(&self, topic: &str) -> usize {
        self.patterns
            .iter()
            .position(|p| p.matches(topic))
            .map_or(0, |i| i + 1)
    }

    /// The class an event goes to: that of the first rule matching any of its topics.
    pub fn class_of(&self, topics: &[Topic]) -> usize {
        self.patterns
            .iter()
            .position(|p| topics.iter().any(|t| p.matches(t.as_str())))
            .map_or(0, |i| i + 1)
    }

    /// The store of class `i` (0 = default).
    pub fn class(&self, i: usize) -> Option<&Arc<dyn Store>> {
        self.classes.get(i)
    }

    /// The classes a subscriber of `topics` may draw events from (`None`: all).
    fn scope(&self, topics: Option<&[Topic]>) -> BTreeSet<usize> {
        match topics {
            Some(topics) => topics
                .iter()
                .map(|t| self.class_of_topic(t.as_str()))
                .collect(),
            None => (0..self.classes.len()).collect(),
        }
    }
}

impl Store for ClassedStore {
    fn append(&self, event: NewEvent) -> Result<Arc<Event>, StoreError> {
        self.append_after(event, EventId::ZERO)
    }

    fn append_after(&self, event: NewEvent, after: EventId) -> Result<Arc<Event>, StoreError> {
        let class = self.class_of(&event.topics);
        let mut last = lock(&self.last);
        let stored = self.classes[class].append_after(event, (*last).max(after))?;
        if stored.id <= *last {
            return Err(StoreError::Unavailable(format!(
                "retention class {class} gave id {} after {}",
                stored.id, *last
            )));
        }
        *last = stored.id;
        Ok(stored)
    }

    /// A page of the merged history. Each class with events after `after` is first asked
    /// where its next event is (a one-event scan that keeps nothing); then, in that order,
    /// each is read (scanning `scan_limit / classes` events, at least one) while its next
    /// event could fall in the page. The page holds only events up to the lowest `through`
    /// among the classes read that did not reach their head, so an event of a class read
    /// past that point comes in the next page, never skipped, never twice; a class whose
    /// next event lies past that point is not read at all (when the classes' events come in
    /// runs, a page costs one class's scan, not one per class). Only ids handed out before
    /// the read began are returned (an append in flight reaches the subscriber through its
    /// queue), and the page is at the head when every class is.
    fn read(
        &self,
        after: EventId,
        filter: &dyn Fn(&Event) -> bool,
        scan_limit: usize,
    ) -> Result<ReadBatch, StoreError> {
        let head = *lock(&self.last);
        let mut next = Vec::with_capacity(self.classes.len());
        for class in &self.classes {
            if class.stats().newest.is_none_or(|newest| newest <= after) {
                continue;
            }
            // `through` of a one-event scan is that event's id (or, if it was trimmed
            // meanwhile, a position before every later one): never past the next event.
            next.push((class.read(after, &|_| false, 1)?.through, class));
        }
        next.sort_unstable_by_key(|(at, _)| *at);
        let per_class = (scan_limit / next.len().max(1)).max(1);
        let mut cut = head;
        let mut events: Vec<Arc<Event>> = Vec::new();
        for (at, class) in next {
            if at > cut {
                break; // this class's events, and those of every class after it, come later
            }
            let page = class.read(after, filter, per_class)?;
            if !page.at_head {
                cut = cut.min(page.through);
            }
            events.extend(page.events);
        }
        events.retain(|e| e.id <= cut);
        events.sort_unstable_by_key(|e| e.id);
        let at_head = cut >= head;
        Ok(ReadBatch {
            events,
            through: if at_head { head.max(after) } else { cut },
            at_head,
        })
    }

    fn locate(&self, last_event_id: &str) -> Result<Locate, StoreError> {
        self.locate_for(last_event_id, None)
    }

    fn locate_for(
        &self,
        last_event_id: &str,
        topics: Option<&[Topic]>,
    ) -> Result<Locate, StoreError> {
        let last = *lock(&self.last);
        let position = last_event_id.parse::<EventId>().ok();
        // A class answers `Found` with another id only for a publisher's custom id.
        let mut custom = None;
        for class in &self.classes {
            if let Locate::Found(id) = class.locate(last_event_id)? {
                if Some(id) != position {
                    custom = Some(id);
                    break;
                }
            }
        }
        let at = match (custom, position) {
            (Some(id), _) => id,
            (None, Some(id)) if id <= last => id,
            _ => return Ok(Locate::Unknown),
        };
        let complete = self
            .scope(topics)
            .into_iter()
            .all(|i| at >= self.classes[i].floor());
        Ok(if complete {
            Locate::Found(at)
        } else {
            Locate::Expired
        })
    }

    /// The highest floor of the classes: after it, every class is complete.
    fn floor(&self) -> EventId {
        self.classes
            .iter()
            .map(|c| c.floor())
            .max()
            .unwrap_or(EventId::ZERO)
    }

    fn replay_start(&self) -> EventId {
        self.classes
            .iter()
            .map(|c| c.replay_start())
            .min()
            .unwrap_or(EventId::ZERO)
    }

    fn stats(&self) -> StoreStats {
        let mut total = StoreStats::default();
        for class in &self.classes {
            let s = class.stats();
            total.events += s.events;
            total.bytes += s.bytes;
            total.oldest = match (total.oldest, s.oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            total.newest = total.newest.max(s.newest);
        }
        total
    }

    fn sync_stats(&self) -> SyncStats {
        let mut total = SyncStats::default();
        for s in self.classes.iter().map(|c| c.sync_stats()) {
            total.fsyncs += s.fsyncs;
            total.fsync_nanos += s.fsync_nanos;
        }
        total
    }

    /// Waits in every class: `id` and every event before it, in whatever class, is durable.
    fn wait_durable(&self, id: EventId) -> Result<(), StoreError> {
        for class in &self.classes {
            class.wait_durable(id)?;
        }
        Ok(())
    }

    fn durable_at_append(&self) -> bool {
        self.classes.iter().all(|class| class.durable_at_append())
    }

    /// Calls `done` once every class has called back for `id` (each class's group commit
    /// runs on its own), with the first error if any.
    fn on_durable(&self, id: EventId, done: DurableCallback) {
        if let [only] = &self.classes[..] {
            return only.on_durable(id, done);
        }
        struct Join {
            left: usize,
            error: Option<StoreError>,
            done: Option<DurableCallback>,
        }
        let join = Arc::new(Mutex::new(Join {
            left: self.classes.len(),
            error: None,
            done: Some(done),
        }));
        for class in &self.classes {
            let join = join.clone();
            class.on_durable(
                id,
                Box::new(move |result| {
                    let mut j = lock(&join);
                    if let Err(e) = result {
                        j.error.get_or_insert(e);
                    }
                    j.left -= 1;
                    if j.left > 0 {
                        return;
                    }
                    let (done, error) = (j.done.take(), j.error.take());
                    drop(j);
                    if let Some(done) = done {
                        done(error.map_or(Ok(()), Err));
                    }
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::store::Retention;

    fn pattern(p: &str) -> TopicPattern {
        TopicPattern::new(p).expect("valid pattern")
    }

    fn memory(retention: Retention) -> Arc<dyn Store> {
        Arc::new(MemoryStore::new(retention))
    }

    fn topics(names: &[&str]) -> Vec<Topic> {
        names
            .iter()
            .map(|n| Topic::new(n).expect("topic"))
            .collect()
    }

    #[test]
    fn patterns_match_segments() {
        let cases = [
            ("prices/*", "prices/eur", true),
            ("prices/*", "prices/", true),
            ("prices/*", "prices", false),
            ("prices/*", "prices/eu/x", false),
            ("price-*/eu", "price-gold/eu", true),
            ("price-*/eu", "price-gold/us", false),
            ("*-log", "a-log", true),
            ("*-log", "log", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxc", false),
            ("chat/**", "chat/a", true),
            ("chat/**", "chat/a/b", true),
            ("chat/**", "chat", false),
            ("chat/**", "chatter/a", false),
            ("news", "news", true),
            ("news", "news/1", false),
            (
                "https://example.com/books/*",
                "https://example.com/books/1",
                true,
            ),
            ("**", "anything/at/all", true),
        ];
        for (p, topic, expected) in cases {
            assert_eq!(pattern(p).matches(topic), expected, "{p} vs {topic}");
        }
        for bad in ["", "a b", "a,b", "a/**/b", "a**", "x\n"] {
            assert!(TopicPattern::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conformance_with_one_class() {
        crate::conformance::check(&|retention| {
            Box::new(ClassedStore::new(memory(retention), Vec::new()))
        });
    }

    #[test]
    fn conformance_with_several_classes() {
        // The suite publishes to `a`, `x`, `y` and `x`+`y`: three classes in play.
        crate::conformance::check(&|retention| {
            Box::new(ClassedStore::new(
                memory(retention.clone()),
                vec![
                    (pattern("x"), memory(retention.clone())),
                    (pattern("y"), memory(retention.clone())),
                    (pattern("z/**"), memory(retention)),
                ],
            ))
        });
        crate::conformance::check_classes(&|default, short, long| {
            Box::new(ClassedStore::new(
                memory(default),
                vec![
                    (pattern("short/*"), memory(short)),
                    (pattern("long/*"), memory(long)),
                ],
            ))
        });
    }

    #[test]
    fn routes_by_first_matching_rule() {
        let store = ClassedStore::new(
            memory(Retention::events(10)),
            vec![
                (pattern("a/*"), memory(Retention::events(10))),
                (pattern("*/x"), memory(Retention::events(10))),
            ],
        );
        assert_eq!(store.class_of(&topics(&["a/x"])), 1);
        assert_eq!(store.class_of(&topics(&["b/x"])), 2);
        assert_eq!(store.class_of(&topics(&["b/x", "a/y"])), 1);
        assert_eq!(store.class_of(&topics(&["c"])), 0);
        let e = store
            .append(NewEvent::new(topics(&["b/x", "a/y"]), "both"))
            .expect("append");
        assert_eq!(store.class(1).expect("class").stats().newest, Some(e.id));
        assert_eq!(store.class(2).expect("class").stats().events, 0);
    }

    #[test]
    fn ids_continue_after_the_newest_class() {
        let a = memory(Retention::events(10));
        let b = memory(Retention::events(10));
        let first = ClassedStore::new(a.clone(), vec![(pattern("b"), b.clone())]);
        let mut last = EventId::ZERO;
        for _ in 0..50 {
            last = first
                .append(NewEvent::new(topics(&["b"]), "x"))
                .expect("append")
                .id;
        }
        // A second store over the same classes (as after a restart of a log-backed hub)
        // starts after the newest id of any class, even when it appends to another one.
        let again = ClassedStore::new(a, vec![(pattern("b"), b)]);
        let next = again
            .append(NewEvent::new(topics(&["a"]), "y"))
            .expect("append");
        assert!(next.id > last, "{} after {}", next.id, last);
    }
}
