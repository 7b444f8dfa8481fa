//! Route aliases at the HTTP edge: each `[[route]]` as an axum route in front of the native
//! API, which serves every request no route claims. A subscribe route opens a native stream
//! of the topics its templates give; a publish route publishes one event. Auth, limits,
//! history and CORS are the native API's.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use ssehub_core::{encode_event, EventName, Frame, NewEvent, Topic};

use crate::auth;
use crate::error::ApiError;
use crate::form;
use crate::http::publish::{body_bytes, parse_topic, publish_new};
use crate::http::subscribe::{self, into_response, open_route, stream_response};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::open::{Opened, Opening, WriteWelcome};
use crate::rate::{PublishRate, Style};
use crate::routes::{names_topics, Action, Route, Template, Val};
use crate::stream::EventStream;

type Params = Option<Path<HashMap<String, String>>>;

/// The routes of `hub.routes`, publish routes behind the rate limit.
pub fn router(hub: &Hub, limit: &Option<Arc<PublishRate>>) -> Router<Arc<Hub>> {
    let mut router = Router::new();
    for (index, route) in hub.routes.list.iter().enumerate() {
        let method = if route.is_subscribe() {
            get(
                move |State(hub): State<Arc<Hub>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      params: Params,
                      uri: Uri,
                      headers: HeaderMap| async move {
                    let params = params.map(|Path(p)| p).unwrap_or_default();
                    let params = hub.routes.list[index].named_params(params);
                    subscribe_route(&hub, index, peer, &params, &uri, &headers)
                },
            )
        } else {
            PublishRate::wrap(
                limit,
                Style::Json,
                post(
                    move |State(hub): State<Arc<Hub>>,
                          ConnectInfo(peer): ConnectInfo<SocketAddr>,
                          params: Params,
                          request: Request| async move {
                        let params = params.map(|Path(p)| p).unwrap_or_default();
                        let params = hub.routes.list[index].named_params(params);
                        publish_route(&hub, index, peer, &params, request).await
                    },
                ),
            )
        };
        router = router.route(&route.axum_path, method);
    }
    router
}

fn subscribe_route(
    hub: &Arc<Hub>,
    index: usize,
    peer: SocketAddr,
    params: &HashMap<String, String>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let route = &hub.routes.list[index];
    let Action::Subscribe {
        retry,
        welcome,
        ids,
    } = &route.action
    else {
        unreachable!("a GET route subscribes");
    };
    let query = uri.query();
    if route.on_native_path() && names_topics(query) {
        // `/events?topic=...` is always the native API's.
        let path_topic = match uri.path().strip_prefix("/events/") {
            Some(t) => Some(
                percent_decode_str(t)
                    .decode_utf8()
                    .map_err(|_| ApiError::field("topic", "topic is not valid UTF-8"))?
                    .into_owned(),
            ),
            None => None,
        };
        return subscribe::prepare(hub, peer, path_topic.as_deref(), query, headers)
            .map(into_response);
    }
    let pairs = form::parse(query.unwrap_or("").as_bytes())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let topics = route_topics(hub, route, params, &pairs)?;
    // The welcome events' data, rendered now; only their ids wait for the position.
    let subscribers = hub.topic(topics[0].as_str()).subscribers;
    let numbers = [
        ("subscribers", Value::from(subscribers)),
        ("now_ms", Value::from(now_ms())),
        (
            "connection",
            Value::from(Metrics::get(&hub.metrics.connections_total) + 1),
        ),
    ];
    let lookup = |name: &str| {
        if let Some(v) = params.get(name) {
            return Some(Val::Text(v.as_str().into()));
        }
        if let Some((_, v)) = numbers.iter().find(|(n, _)| *n == name) {
            return Some(Val::Json(v));
        }
        query_value(route, &pairs, name).map(Val::Text)
    };
    let mut greetings = Vec::with_capacity(welcome.len());
    for w in welcome {
        let data = w
            .data
            .render(lookup)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("welcome event: {e}")))?;
        greetings.push((w, data));
    }
    let write = |out: &mut Vec<u8>, position: &str| {
        for (w, data) in &greetings {
            encode_event(
                &Frame {
                    id: w.id.then_some(position),
                    event: w.event.as_deref(),
                    data,
                    ..Frame::default()
                },
                out,
            );
        }
    };
    let opening = Opening::Route {
        retry: *retry,
        welcome: (!greetings.is_empty()).then_some(&write as &WriteWelcome<'_>),
    };
    let opened = open_route(hub, topics, query, headers, &opening)?;
    match opened {
        Opened::Stream(stream) if !ids => Ok(stream_response(Body::new(WithoutIds(stream)))),
        opened => Ok(into_response(opened)),
    }
}

/// A stream with its `id:` lines left out (a route with `ids = false`). Every chunk of an
/// event stream is whole lines, and no other line of one starts with `id:`.
struct WithoutIds(EventStream);

impl http_body::Body for WithoutIds {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let inner = Pin::new(&mut self.get_mut().0);
        inner.poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|frame| {
                    frame.map_data(|data| {
                        let mut out = Vec::with_capacity(data.len());
                        for line in data.split_inclusive(|b| *b == b'\n') {
                            if !line.starts_with(b"id:") {
                                out.extend_from_slice(line);
                            }
                        }
                        Bytes::from(out)
                    })
                })
            })
        })
    }
}

/// A query parameter's value (several joined with `,`), else the route's default.
fn query_value<'a>(
    route: &'a Route,
    pairs: &[(String, String)],
    name: &str,
) -> Option<Cow<'a, str>> {
    let given: Vec<&str> = pairs
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect();
    if given.is_empty() {
        return route.defaults.get(name).map(|d| Cow::Borrowed(d.as_str()));
    }
    Some(Cow::Owned(given.join(",")))
}

/// The topics a subscribe request names: each template once per combination of its
/// variables' values, a path parameter giving one value and a query parameter (or its
/// default) one per comma-separated item.
fn route_topics(
    hub: &Hub,
    route: &Route,
    params: &HashMap<String, String>,
    pairs: &[(String, String)],
) -> Result<Vec<Topic>, ApiError> {
    let too_many = || {
        ApiError::field(
            "topic",
            format!(
                "too many topics: at most {} per subscription",
                hub.config.max_topics
            ),
        )
    };
    let mut topics: Vec<Topic> = Vec::new();
    for template in &route.topics {
        let mut combos: Vec<Vec<(&str, String)>> = vec![Vec::new()];
        let mut names: Vec<&str> = template.vars().collect();
        names.dedup();
        for name in names {
            let values: Vec<String> = match params.get(name) {
                Some(v) => vec![v.clone()],
                None => {
                    let text = query_value(route, pairs, name).ok_or_else(|| {
                        ApiError::field(
                            "topic",
                            format!("missing query parameter {name:?} (this URL's topics need it)"),
                        )
                    })?;
                    text.split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
            };
            combos = combos
                .into_iter()
                .flat_map(|combo| {
                    values.iter().map(move |v| {
                        let mut next = combo.clone();
                        next.push((name, v.clone()));
                        next
                    })
                })
                .collect();
            if combos.len() > hub.config.max_topics {
                return Err(too_many());
            }
        }
        for combo in combos {
            let name = render_vars(template, &combo)?;
            let topic = parse_topic(&name)?;
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        if topics.len() > hub.config.max_topics {
            return Err(too_many());
        }
    }
    if topics.is_empty() {
        return Err(ApiError::field("topic", "the request names no topic"));
    }
    Ok(topics)
}

fn render_vars(template: &Template, vars: &[(&str, String)]) -> Result<String, ApiError> {
    template
        .render(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| Val::Text(v.as_str().into()))
        })
        .map_err(|e| ApiError::field("topic", format!("topic template: {e}")))
}

async fn publish_route(
    hub: &Arc<Hub>,
    index: usize,
    peer: SocketAddr,
    params: &HashMap<String, String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = Bytes::from_request(Request::from_parts(parts, body), hub).await;
    let route = &hub.routes.list[index];
    let result = auth::publisher(hub, peer, &headers, None)
        .map_err(ApiError::from)
        .and_then(|grants| {
            let body = body_bytes(hub, body)?;
            let new = route_event(route, params, &headers, &body)?;
            auth::check_publish(grants.as_ref(), &new.topics)?;
            Ok(new)
        });
    let new = result.inspect_err(|_| Metrics::add(&hub.metrics.publish_rejected, 1))?;
    let published = publish_new(hub, new).await?;
    let Action::Publish {
        reply: Some(reply), ..
    } = &route.action
    else {
        return Ok(Json(published).into_response());
    };
    let delivered = Value::from(published.delivered);
    let text = reply
        .render(|name| match name {
            "id" => Some(Val::Text(published.id.as_str().into())),
            "delivered" => Some(Val::Json(&delivered)),
            p => params.get(p).map(|v| Val::Text(v.as_str().into())),
        })
        .map_err(|e| ApiError::internal(&format!("route reply: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// The event a publish route's request makes: topics from the path parameters and body
/// fields, data from the route's template (the body as sent by default).
fn route_event(
    route: &Route,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<NewEvent, ApiError> {
    let Action::Publish { event, data, .. } = &route.action else {
        unreachable!("a POST route publishes");
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body is not valid UTF-8: {e}"),
        )
    })?;
    let fields = body_fields(headers, text)?;
    let lookup = |name: &str| {
        if let Some(v) = params.get(name) {
            return Some(Val::Text(v.as_str().into()));
        }
        if name == "body" {
            return Some(Val::Text(text.into()));
        }
        fields.as_ref()?.get(name).map(Val::Json)
    };
    let missing = |e: crate::routes::MissingVar| {
        let hint = if fields.is_some() {
            "the body has no such field"
        } else {
            "send a JSON object (Content-Type: application/json) or a form"
        };
        ApiError::new(StatusCode::BAD_REQUEST, format!("{e}: {hint}"))
    };
    let mut topics = Vec::with_capacity(route.topics.len());
    for template in &route.topics {
        let topic = parse_topic(&template.render(lookup).map_err(missing)?)?;
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    let mut new = NewEvent::new(topics, data.render(lookup).map_err(missing)?);
    new.name = event
        .as_deref()
        .map(|e| EventName::new(e).expect("checked when the route was compiled"));
    Ok(new)
}

/// The body's fields: a form's pairs, or a JSON object's members; `None` for any other body.
fn body_fields(
    headers: &HeaderMap,
    text: &str,
) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs = form::parse(text.as_bytes())
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        return Ok(Some(
            pairs
                .into_iter()
                .map(|(n, v)| (n, Value::String(v)))
                .collect(),
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        _ => Ok(None),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
