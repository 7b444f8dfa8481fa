"""The event-stream parser, by the WHATWG rules, fed whole and in every split."""

from ssehub import Event, SSEParser


def parse(chunks, parser=None):
    parser = parser or SSEParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events, parser


def every_split(raw: bytes):
    """The stream fed whole, byte by byte, and cut at each position."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]


def same_everywhere(raw: bytes):
    results = [parse(chunks)[0] for chunks in every_split(raw)]
    for r in results[1:]:
        assert r == results[0]
    return results[0]


def test_line_ends_lf_cr_crlf_and_mixed():
    for sep in (b"\n", b"\r", b"\r\n"):
        raw = b"data: a" + sep + b"data: b" + sep + sep + b"data: c" + sep + sep
        events = same_everywhere(raw)
        assert [e.data for e in events] == ["a\nb", "c"]
    events = same_everywhere(b"data: x\r\ndata: y\rdata: z\n\r\n")
    assert [e.data for e in events] == ["x\ny\nz"]


def test_cr_then_lf_in_next_chunk_is_one_line_end():
    events, _ = parse([b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n"])
    assert [e.data for e in events] == ["a", "b"]


def test_bom_is_dropped_once_even_split():
    raw = "\ufeffdata: a\n\n".encode()
    assert [e.data for e in same_everywhere(raw)] == ["a"]
    # A second BOM is data (the field name is then "\ufeffdata", an unknown field).
    events, _ = parse(["\ufeff\ufeffdata: a\n\ndata: b\n\n"])
    assert [e.data for e in events] == ["b"]


def test_fields_event_id_and_space_rule():
    events = same_everywhere(b"id: 7\nevent: headline\ndata:no space\ndata:  two\n\n")
    assert events == [Event(data="no space\n two", event="headline", id="7", last_event_id="7")]


def test_id_persists_and_events_without_id():
    events, parser = parse([b"id: 1\ndata: a\n\nevent: ssehub-reset\ndata: {}\n\n"])
    assert events[0].id == "1" and events[1].id is None
    assert events[1].last_event_id == "1" and events[1].is_reset
    assert parser.last_event_id == "1"


def test_id_with_nul_is_ignored_and_empty_id_resets():
    _, parser = parse([b"id: 5\n\nid: a\x00b\ndata: x\n\n"])
    assert parser.last_event_id == "5"
    _, parser = parse([b"id: 5\n\nid\ndata: x\n\n"])
    assert parser.last_event_id == ""


def test_retry_digits_only():
    _, parser = parse([b"retry: 1500\n\n"])
    assert parser.retry == 1500
    for bad in (b"retry: 15x\n", b"retry: -1\n", b"retry: 1.5\n", b"retry:\n", b"retry:  10\n"):
        _, parser = parse([b"retry: 100\n", bad])
        assert parser.retry == 100, bad


def test_comments_and_unknown_fields_are_ignored():
    events = same_everywhere(b": ok\n: heartbeat\nfoo: bar\ndata\n\n")
    assert [e.data for e in events] == [""]
    assert events[0].event == "message"


def test_no_data_no_event_and_event_name_resets():
    events, _ = parse([b"event: x\n\ndata: a\n\n"])
    assert [(e.event, e.data) for e in events] == [("message", "a")]


def test_empty_data_line_is_an_event_and_trailing_lf_removed():
    events, _ = parse([b"data:\n\ndata\ndata\n\n"])
    assert [e.data for e in events] == ["", "\n"]


def test_unterminated_last_event_is_discarded():
    events, _ = parse([b"data: a\n\ndata: b\n"])
    assert [e.data for e in events] == ["a"]


def test_utf8_split_across_chunks_and_invalid_bytes():
    raw = "data: héllo €\n\n".encode()
    assert [e.data for e in same_everywhere(raw)] == ["héllo €"]
    events, _ = parse([b"data: \xff\n\n"])
    assert events[0].data == "\ufffd"


def test_json_helper():
    events, _ = parse([b'data: {"a": [1, 2]}\n\n'])
    assert events[0].json() == {"a": [1, 2]}


def test_long_line_in_many_chunks():
    payload = "x" * 100_000
    raw = ("data: " + payload + "\n\n").encode()
    chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    events, _ = parse(chunks)
    assert events[0].data == payload
