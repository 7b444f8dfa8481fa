//! The SSE encoder: the only place that writes the wire format.
//!
//! Spec-exact (WHATWG HTML §9.2.6): every payload line gets its own `data: ` field, with the
//! space, so a payload starting with a space keeps it; CR, LF and CRLF all split lines, so no
//! payload can smuggle in a field of its own; an empty payload still writes `data: ` so the
//! browser dispatches the event. Field values for `id` and `event` are validated before they
//! get here ([`crate::EventName`], [`crate::WireId`]); the encoder does not re-check them.

/// One event as it goes on the wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frame<'a> {
    pub id: Option<&'a str>,
    /// The event type; `None` lets the browser use its default, `message`.
    pub event: Option<&'a str>,
    /// A reconnection delay for the client, in milliseconds.
    pub retry: Option<u64>,
    pub data: &'a str,
}

/// Appends the encoding of `frame` to `out`, blank line included.
pub fn encode_event(frame: &Frame<'_>, out: &mut Vec<u8>) {
    out.reserve(frame.data.len() + 32);
    if let Some(id) = frame.id {
        push_field(out, b"id", id);
    }
    if let Some(event) = frame.event {
        push_field(out, b"event", event);
    }
    if let Some(retry) = frame.retry {
        encode_retry(retry, out);
    }
    let mut rest = frame.data;
    loop {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                push_field(out, b"data", &rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                push_field(out, b"data", rest);
                break;
            }
        }
    }
    out.push(b'\n');
}

/// Appends a `retry:` line (no blank line: the caller ends the block).
pub fn encode_retry(ms: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"retry: ");
    out.extend_from_slice(ms.to_string().as_bytes());
    out.push(b'\n');
}

/// Appends a comment block (`: text`, blank line). Line breaks inside `text` start new comment
/// lines, so a comment can never turn into a field.
pub fn encode_comment(text: &str, out: &mut Vec<u8>) {
    for line in text.split(['\r', '\n']) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &str) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(frame: Frame<'_>) -> String {
        let mut out = Vec::new();
        encode_event(&frame, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table() {
        let cases: &[(Frame<'_>, &str)] = &[
            (
                Frame {
                    data: "hi",
                    ..Frame::default()
                },
                "data: hi\n\n",
            ),
            (
                Frame {
                    data: "",
                    ..Frame::default()
                },
                "data: \n\n",
            ),
            (
                Frame {
                    data: " lead",
                    ..Frame::default()
                },
                "data:  lead\n\n",
            ),
            (
                Frame {
                    data: "a\nb",
                    ..Frame::default()
                },
                "data: a\ndata: b\n\n",
            ),
            (
                Frame {
                    data: "a\r\nb",
                    ..Frame::default()
                },
                "data: a\ndata: b\n\n",
            ),
            (
                Frame {
                    data: "a\rb",
                    ..Frame::default()
                },
                "data: a\ndata: b\n\n",
            ),
            (
                Frame {
                    data: "a\n",
                    ..Frame::default()
                },
                "data: a\ndata: \n\n",
            ),
            (
                Frame {
                    data: "\r\r\n",
                    ..Frame::default()
                },
                "data: \ndata: \ndata: \n\n",
            ),
            (
                Frame {
                    data: "x\n\nid: 9",
                    ..Frame::default()
                },
                "data: x\ndata: \ndata: id: 9\n\n",
            ),
            (
                Frame {
                    id: Some("1-0"),
                    event: Some("news"),
                    retry: Some(3000),
                    data: "d",
                },
                "id: 1-0\nevent: news\nretry: 3000\ndata: d\n\n",
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(enc(*frame), *want, "{frame:?}");
        }
    }

    #[test]
    fn comments_cannot_become_fields() {
        let mut out = Vec::new();
        encode_comment("ok\ndata: x", &mut out);
        assert_eq!(out, b": ok\n: data: x\n\n");
    }
}
