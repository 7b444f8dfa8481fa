"""An incremental Server-Sent Events parser, after the WHATWG HTML "event stream" rules.

Feed it bytes (or text) as they arrive, in chunks of any size; it returns the events that
each chunk completes. It handles CR, LF and CRLF line ends (also a CRLF split across two
chunks), a leading byte order mark, multi-line ``data`` (joined with LF), ``retry`` (ASCII
digits only, anything else ignored), ``id`` (ignored when it holds NUL), comments and unknown
fields (ignored), and UTF-8 split across chunks (invalid bytes become U+FFFD).
"""

from __future__ import annotations

import codecs
import json as _json
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Union

__all__ = ["Event", "SSEParser", "RESET_EVENT"]

#: The name of the hub's control event meaning "you may have missed events".
RESET_EVENT = "ssehub-reset"

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One dispatched event.

    ``id`` is the id this event carried (``None`` when it had no ``id:`` line, as the hub's
    control events do); ``last_event_id`` is the stream's last event id buffer after it (what
    a reconnect sends). ``event`` is ``"message"`` when the server named none.
    """

    data: str
    event: str = "message"
    id: Optional[str] = None
    last_event_id: str = ""

    def json(self) -> Any:
        """The data parsed as JSON."""
        return _json.loads(self.data)

    @property
    def is_reset(self) -> bool:
        """Whether this is the hub's ``ssehub-reset`` control event."""
        return self.event == RESET_EVENT


class SSEParser:
    """Incremental parser. ``feed()`` returns completed events; ``retry`` holds the last
    valid ``retry:`` value in milliseconds (or ``None``), ``last_event_id`` the id buffer."""

    def __init__(self, last_event_id: str = "") -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # a first character was seen (BOM check done)
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._pending: List[str] = []  # text of the current, unfinished line
        self._data: List[str] = []
        self._has_data = False
        self._event = ""
        self._current_id: Optional[str] = None
        self.last_event_id = last_event_id
        self.retry: Optional[int] = None

    def feed(self, chunk: Union[bytes, bytearray, str]) -> List[Event]:
        """Parses a chunk; returns the events it completes, in order."""
        text = chunk if isinstance(chunk, str) else self._decoder.decode(bytes(chunk))
        return self._feed_text(text)

    def _feed_text(self, text: str) -> List[Event]:
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        events: List[Event] = []
        pos = 0
        for match in _LINE_END.finditer(text):
            if match.group() == "\r" and match.end() == len(text):
                self._skip_lf = True
            self._pending.append(text[pos : match.start()])
            line = "".join(self._pending)
            self._pending = []
            pos = match.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        if pos < len(text):
            self._pending.append(text[pos:])
        return events

    def close(self) -> List[Event]:
        """Ends the stream: flushes the decoder. An unterminated last event is discarded,
        as the spec says; an unterminated last line is processed (it may be a ``retry``)."""
        events = self._feed_text(self._decoder.decode(b"", final=True))
        if self._pending:
            line = "".join(self._pending)
            self._pending = []
            self._line(line)
        self._data = []
        self._has_data = False
        self._event = ""
        return events

    def _line(self, line: str) -> Optional[Event]:
        if line == "":
            return self._dispatch()
        if line[0] == ":":
            return None  # comment
        colon = line.find(":")
        if colon == -1:
            field, value = line, ""
        else:
            field, value = line[:colon], line[colon + 1 :]
            if value.startswith(" "):
                value = value[1:]
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self.last_event_id = value
                self._current_id = value
        elif field == "retry":
            if value and all("0" <= c <= "9" for c in value):
                self.retry = int(value)
        return None

    def _dispatch(self) -> Optional[Event]:
        current_id, self._current_id = self._current_id, None
        if not self._has_data:
            self._event = ""
            return None
        event = Event(
            data="\n".join(self._data),
            event=self._event or "message",
            id=current_id,
            last_event_id=self.last_event_id,
        )
        self._data = []
        self._has_data = False
        self._event = ""
        return event
