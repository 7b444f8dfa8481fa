//! Just enough of an SSE stream parser (LF, CR, CRLF; comments; multi-line data; `id:`) and the
//! chunked transfer decoder in front of it, both fed with arbitrary splits of the byte stream.

/// Incremental `text/event-stream` parser.
#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The last `id:` value seen (the spec's "last event ID buffer").
    pub last_id: Option<Vec<u8>>,
    skip_lf: bool,
}

impl SseParser {
    /// Forget partial lines and data (a new response starts) but keep the last event id.
    pub fn reset_stream(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.skip_lf = false;
    }

    /// Feed bytes; `on_event(data)` is called for every dispatched event with data.
    pub fn feed(&mut self, mut input: &[u8], on_event: &mut impl FnMut(&[u8])) {
        while !input.is_empty() {
            if self.skip_lf {
                self.skip_lf = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            match input.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(input);
                    return;
                }
                Some(pos) => {
                    if input[pos] == b'\r' {
                        self.skip_lf = true;
                    }
                    if self.line.is_empty() {
                        self.process_line(&input[..pos], on_event);
                    } else {
                        let mut line = std::mem::take(&mut self.line);
                        line.extend_from_slice(&input[..pos]);
                        self.process_line(&line, on_event);
                        line.clear();
                        self.line = line;
                    }
                    input = &input[pos + 1..];
                }
            }
        }
    }

    fn process_line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) {
        if line.is_empty() {
            if self.has_data {
                on_event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => self.last_id = Some(value.to_vec()),
            _ => {}
        }
    }
}

/// Find the benchmark marker `@<send_us>:<seq>:` anywhere in an event's data (the data may be
/// wrapped, e.g. JSON-quoted by a hub). Returns (send time in µs, per-topic sequence number).
pub fn parse_marker(data: &[u8]) -> Option<(u64, u64)> {
    let at = data.iter().position(|&b| b == b'@')?;
    let rest = &data[at + 1..];
    let (t, rest) = parse_num(rest)?;
    let rest = rest.strip_prefix(b":")?;
    let (s, rest) = parse_num(rest)?;
    rest.strip_prefix(b":")?;
    Some((t, s))
}

fn parse_num(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let mut v = 0u64;
    for c in &b[..n] {
        v = v * 10 + u64::from(c - b'0');
    }
    Some((v, &b[n..]))
}

/// The benchmark payload: marker, then `x` padding up to `size` bytes. Only `[0-9@:x]`, so it
/// needs no escaping in JSON, form bodies, nchan's raw bodies or Pushpin's content strings.
pub fn make_payload(send_us: u64, seq: u64, size: usize) -> String {
    let mut s = format!("@{send_us}:{seq}:");
    while s.len() < size {
        s.push('x');
    }
    s
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ChunkState {
    Size,
    Ext,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    Trailer,
    Done,
}

/// `Transfer-Encoding: chunked` decoder; tolerant of splits anywhere.
pub struct ChunkDecoder {
    state: ChunkState,
    size: u64,
    trailer_line_empty: bool,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder {
            state: ChunkState::Size,
            size: 0,
            trailer_line_empty: true,
        }
    }
}

impl ChunkDecoder {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Feed raw bytes; decoded body pieces go to `out`. Err on malformed framing.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<(), &'static str> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (b as char).to_digit(16).unwrap_or(0);
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(d)))
                                .ok_or("chunk size overflow")?;
                        }
                        b';' | b' ' | b'\t' => self.state = ChunkState::Ext,
                        b'\r' => self.state = ChunkState::SizeLf,
                        b'\n' => self.end_size(),
                        _ => return Err("bad chunk size"),
                    }
                }
                ChunkState::Ext => {
                    if let Some(p) = input.iter().position(|&b| b == b'\n') {
                        input = &input[p + 1..];
                        self.end_size();
                    } else {
                        return Ok(());
                    }
                }
                ChunkState::SizeLf => {
                    if input[0] != b'\n' {
                        return Err("bad chunk size line");
                    }
                    input = &input[1..];
                    self.end_size();
                }
                ChunkState::Data(left) => {
                    let n = (left as usize).min(input.len());
                    out(&input[..n]);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataCr => {
                    match input[0] {
                        b'\r' => self.state = ChunkState::DataLf,
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err("missing CRLF after chunk"),
                    }
                    input = &input[1..];
                }
                ChunkState::DataLf => {
                    if input[0] != b'\n' {
                        return Err("missing LF after chunk");
                    }
                    input = &input[1..];
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\n' {
                        if self.trailer_line_empty {
                            self.state = ChunkState::Done;
                        }
                        self.trailer_line_empty = true;
                    } else if b != b'\r' {
                        self.trailer_line_empty = false;
                    }
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn end_size(&mut self) {
        self.state = if self.size == 0 {
            self.trailer_line_empty = true;
            ChunkState::Trailer
        } else {
            ChunkState::Data(self.size)
        };
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(parts: &[&[u8]]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let mut p = SseParser::default();
        let mut evs = Vec::new();
        for part in parts {
            p.feed(part, &mut |d| evs.push(d.to_vec()));
        }
        (evs, p.last_id.clone())
    }

    #[test]
    fn every_split_point_and_line_ending() {
        let lf =
            b": ok\nretry: 3000\n\nid: 7\nevent: x\ndata: a\ndata: b\n\n:hb\n\ndata:c\n\nid: 9\n\n"
                .to_vec();
        for text in [
            lf.clone(),
            String::from_utf8(lf.clone())
                .unwrap()
                .replace('\n', "\r\n")
                .into_bytes(),
            String::from_utf8(lf.clone())
                .unwrap()
                .replace('\n', "\r")
                .into_bytes(),
        ] {
            for i in 0..=text.len() {
                for j in i..=text.len() {
                    let (evs, id) = parse_all(&[&text[..i], &text[i..j], &text[j..]]);
                    assert_eq!(evs, vec![b"a\nb".to_vec(), b"c".to_vec()], "split {i} {j}");
                    assert_eq!(id.as_deref(), Some(&b"9"[..]));
                }
            }
        }
    }

    #[test]
    fn marker_in_wrapped_data() {
        let p = make_payload(1_700_000_000_000_123, 42, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(
            parse_marker(p.as_bytes()),
            Some((1_700_000_000_000_123, 42))
        );
        let quoted = format!("\"{p}\"");
        assert_eq!(
            parse_marker(quoted.as_bytes()),
            Some((1_700_000_000_000_123, 42))
        );
        assert_eq!(parse_marker(b"Connected to server"), None);
        assert_eq!(parse_marker(b"@12:"), None);
    }

    #[test]
    fn chunked_every_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\n";
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let mut d = ChunkDecoder::default();
                let mut out = Vec::new();
                for part in [&body[..i], &body[i..j], &body[j..]] {
                    d.feed(part, &mut |b| out.extend_from_slice(b)).unwrap();
                }
                assert_eq!(out, b"hello, world");
                assert!(d.is_done());
            }
        }
        let mut d = ChunkDecoder::default();
        assert!(d.feed(b"zz\r\n", &mut |_| {}).is_err());
    }
}
