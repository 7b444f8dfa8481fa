//! Publishing: one event to one or more topics over `POST /publish`.

use serde::{Deserialize, Serialize};

use crate::{read_body, read_hub_error, Client, Error};

/// An event to publish. Validation (topic names, event name, id) is the hub's: a refused
/// publish comes back as an [`Error`] with the hub's status, `error` and `field`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publish {
    /// The topics the event goes to (at least one).
    pub topics: Vec<String>,
    /// The event name; `None` sends none, so subscribers see `message`.
    pub event: Option<String>,
    /// The payload, sent as is (any text; newlines are fine).
    pub data: String,
    /// A custom event id; `None` lets the hub assign one.
    pub id: Option<String>,
    /// A reconnection time in milliseconds to send along with the event.
    pub retry: Option<u64>,
    /// Make this the topics' final event: their subscribers' streams end after it.
    pub close: bool,
}

impl Publish {
    /// An unnamed event with `data` on one topic.
    pub fn new(topic: impl Into<String>, data: impl Into<String>) -> Publish {
        Publish {
            topics: vec![topic.into()],
            data: data.into(),
            ..Publish::default()
        }
    }
}

/// The hub's answer to a publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The id the event was stored under.
    pub id: String,
    /// How many subscribers on this hub it was queued for.
    pub delivered: u64,
}

/// The JSON body of `POST /publish`.
#[derive(Serialize)]
struct Body<'a> {
    topic: Topics<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    data: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    close: bool,
}

/// One topic goes as a string, several as an array, as in the API's examples.
#[derive(Serialize)]
#[serde(untagged)]
enum Topics<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Body<'a> {
    fn new(p: &'a Publish) -> Body<'a> {
        Body {
            topic: match p.topics.as_slice() {
                [one] => Topics::One(one),
                many => Topics::Many(many),
            },
            event: p.event.as_deref(),
            data: &p.data,
            id: p.id.as_deref(),
            retry: p.retry,
            close: p.close,
        }
    }
}

impl Client {
    /// Publishes one event: `POST /publish` with a JSON body.
    pub async fn publish(&self, event: &Publish) -> Result<Published, Error> {
        let mut response = self
            .http
            .post(self.endpoint("publish"))
            .timeout(self.timeout)
            .json(&Body::new(event))
            .send()
            .await
            .map_err(Error::transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(read_hub_error(response).await);
        }
        let body = read_body(&mut response).await?;
        serde_json::from_slice(&body).map_err(Error::decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(p: &Publish) -> String {
        serde_json::to_string(&Body::new(p)).unwrap()
    }

    #[test]
    fn body_has_only_the_fields_given() {
        assert_eq!(
            json(&Publish::new("news", "hi")),
            r#"{"topic":"news","data":"hi"}"#
        );
        let all = Publish {
            topics: vec!["news".into(), "sports".into()],
            event: Some("headline".into()),
            data: "a\nb".into(),
            id: Some("x1".into()),
            retry: Some(5000),
            close: true,
        };
        assert_eq!(
            json(&all),
            r#"{"topic":["news","sports"],"event":"headline","data":"a\nb","id":"x1","retry":5000,"close":true}"#
        );
    }

    #[test]
    fn published_round_trips_in_the_hubs_shape() {
        let p: Published = serde_json::from_str(r#"{"id":"17-0","delivered":3}"#).unwrap();
        assert_eq!(
            p,
            Published {
                id: "17-0".into(),
                delivered: 3
            }
        );
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"id":"17-0","delivered":3}"#
        );
    }

    use crate::fake_hub::{answer, FakeHub, Reply};

    const JSON: &str = "Content-Type: application/json\r\n";

    #[tokio::test]
    async fn publish_posts_json_and_reads_the_answer() {
        let hub = FakeHub::start(vec![Reply::Close(answer(
            "200 OK",
            JSON,
            r#"{"id":"1-0","delivered":2}"#,
        ))])
        .await;
        let published = Client::new(&hub.url)
            .unwrap()
            .publish(&Publish {
                event: Some("headline".into()),
                ..Publish::new("news", "hi")
            })
            .await
            .unwrap();
        assert_eq!(
            published,
            Published {
                id: "1-0".into(),
                delivered: 2
            }
        );
        let request = &hub.requests()[0];
        assert!(
            request.starts_with("post /publish http/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("content-type: application/json\r\n"));
        assert!(request.ends_with(r#"{"topic":"news","event":"headline","data":"hi"}"#));
    }

    #[tokio::test]
    async fn a_refused_publish_carries_the_hubs_error() {
        let hub = FakeHub::start(vec![Reply::Close(answer(
            "400 Bad Request",
            JSON,
            r#"{"error":"event name contains a newline","field":"event"}"#,
        ))])
        .await;
        let e = Client::new(&hub.url)
            .unwrap()
            .publish(&Publish::new("news", "hi"))
            .await
            .unwrap_err();
        assert!(e.is_status());
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.hub_error(), Some("event name contains a newline"));
        assert_eq!(e.hub_field(), Some("event"));
    }

    #[tokio::test]
    async fn a_200_that_is_not_the_documented_json_is_a_decode_error() {
        let hub = FakeHub::start(vec![Reply::Close(answer("200 OK", "", "ok"))]).await;
        let e = Client::new(&hub.url)
            .unwrap()
            .publish(&Publish::new("news", "hi"))
            .await
            .unwrap_err();
        assert!(e.is_decode(), "{e}");
    }

    #[tokio::test]
    async fn publish_times_out() {
        let hub = FakeHub::start(vec![Reply::Hold(Vec::new())]).await;
        let e = Client::new(&hub.url)
            .unwrap()
            .with_timeout(std::time::Duration::from_millis(100))
            .publish(&Publish::new("news", "hi"))
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e}");
    }
}
