// The incremental event-stream parser, after the WHATWG HTML rules for server-sent events
// (section 9.2.5-9.2.6). Feed it bytes (or text) as they arrive, in chunks of any size; each
// call returns the events that chunk completes.
//
// What it does, rule by rule: the bytes are decoded as UTF-8 across chunk boundaries (invalid
// sequences become U+FFFD, one leading byte order mark is dropped); lines end with CRLF, LF or
// a lone CR, also a CR that ends one chunk with its LF starting the next (the line is handled
// at once, the LF swallowed later); `data` lines are joined with LF; `id` is ignored when it
// holds NUL; `retry` counts only when it is ASCII digits; comments and unknown fields are
// ignored; a blank line dispatches, committing the id even when there is no data; at the end
// of the stream an unfinished line and an undispatched event are discarded.

/** The name of the hub's control event meaning "you may have missed events". */
export const RESET_EVENT = 'ssehub-reset';
/** The name of the hub's presence control event (subscriptions with `presence`). */
export const PRESENCE_EVENT = 'ssehub-presence';

const LF = 10;
const CR = 13;

/** One dispatched event. */
export class SSEEvent {
  constructor(event, data, id, lastEventId) {
    /** The event type: `message` when the server named none. */
    this.event = event;
    /** The data lines joined with LF. */
    this.data = data;
    /** The id this event's block carried, or null (the hub's control events carry none). */
    this.id = id;
    /** The stream's last event id after this event: what a reconnect resumes from. */
    this.lastEventId = lastEventId;
  }

  /** The data parsed as JSON. */
  json() {
    return JSON.parse(this.data);
  }

  /** Whether this is the hub's `ssehub-reset` control event. */
  get isReset() {
    return this.event === RESET_EVENT;
  }
}

/**
 * Splits decoded text into lines (CRLF, LF, lone CR), chunk by chunk. A line is reported as
 * soon as its end arrives; an unterminated tail is held until its end comes.
 */
export class LineSplitter {
  constructor() {
    this._pending = ''; // the start of the current, unfinished line
    this._skipLF = false; // the last chunk ended in CR: an LF starting the next belongs to it
    this._discard = false; // drop the current line, up to and with its end
  }

  /** Drops the unterminated tail and the rest of its line, which is then not reported. */
  discardLine() {
    this._pending = '';
    this._discard = true;
  }

  /** Calls `onLine(line)` for each line `text` completes. */
  push(text, onLine) {
    const n = text.length;
    let i = 0;
    if (this._skipLF && n > 0) {
      this._skipLF = false;
      if (text.charCodeAt(0) === LF) i = 1;
    }
    let start = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) {
        i += 1;
        continue;
      }
      const line = this._pending === '' ? text.slice(start, i) : this._pending + text.slice(start, i);
      this._pending = '';
      const discarded = this._discard;
      this._discard = false;
      if (c === CR) {
        if (i + 1 < n) {
          if (text.charCodeAt(i + 1) === LF) i += 1;
        } else {
          this._skipLF = true;
        }
      }
      i += 1;
      start = i;
      if (!discarded) onLine(line);
    }
    if (start < n && !this._discard) this._pending += text.slice(start);
  }

  /** The unterminated tail held back so far. */
  get tail() {
    return this._pending;
  }

  /** Forgets the unterminated tail (the end of a stream). */
  reset() {
    this._pending = '';
    this._skipLF = false;
    this._discard = false;
  }
}

/**
 * The parser. `lastEventId` is the committed last event id (what a reconnect sends as
 * `Last-Event-ID`); `retry` the last valid `retry:` value in milliseconds, or null.
 * Options: `lastEventId` to start from; `onRetry(ms)`, `onComment(text)` and `onEvent(event)`
 * hooks, called in stream order as each line is handled (events are also returned by `feed`);
 * `maxEventSize` (characters; none by default): an event whose data, or any one line, would
 * go over it is skipped, its `id` and `retry` still count, and `onOversize(lastEventId)` is
 * told; a longer comment line is dropped.
 */
export class SSEParser {
  constructor({
    lastEventId = '', onRetry = null, onComment = null, onEvent = null, maxEventSize = Infinity, onOversize = null,
  } = {}) {
    this._decoder = new TextDecoder('utf-8'); // drops one leading BOM, replaces bad bytes
    this._lines = new LineSplitter();
    this._data = [];
    this._hasData = false;
    this._type = '';
    this._idBuffer = lastEventId; // the last event ID buffer
    this._blockId = null; // the id field of the block being read, if any
    this._onRetry = onRetry;
    this._onComment = onComment;
    this._onEvent = onEvent;
    this._max = maxEventSize;
    this._onOversize = onOversize;
    this._size = 0; // characters of data in the current event
    this._oversize = false; // the current event went over the limit: its data is dropped
    this.lastEventId = lastEventId;
    this.retry = null;
  }

  /** Parses a chunk (Uint8Array, ArrayBuffer or string); returns the events it completes. */
  feed(chunk) {
    let text;
    if (typeof chunk === 'string') text = chunk;
    else text = this._decoder.decode(chunk instanceof ArrayBuffer ? new Uint8Array(chunk) : chunk, { stream: true });
    const events = [];
    if (text !== '') this._lines.push(text, (line) => this._line(line, events));
    const tail = this._lines.tail;
    if (tail.length > this._max - this._size) {
      // An unterminated line already too big: drop it rather than hold it. The same rule
      // as in _line, so that where the chunks were cut changes nothing.
      this._lines.discardLine();
      if (tail.charCodeAt(0) !== 58 /* : */) this._overflow();
    }
    return events;
  }

  _overflow() {
    this._oversize = true;
    this._data = [];
    this._hasData = false;
    this._size = 0;
  }

  /**
   * Ends the stream: flushes the decoder, then discards the unterminated line and the
   * undispatched event, as the spec says. Returns any events the flush completed.
   */
  end() {
    const events = [];
    const rest = this._decoder.decode();
    if (rest !== '') this._lines.push(rest, (line) => this._line(line, events));
    this._lines.reset();
    this._data = [];
    this._hasData = false;
    this._type = '';
    this._blockId = null;
    this._idBuffer = this.lastEventId;
    this._size = 0;
    this._oversize = false;
    this._decoder = new TextDecoder('utf-8');
    return events;
  }

  _line(line, events) {
    if (line === '') {
      this._dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      if (this._onComment) this._onComment(line.slice(1));
      return;
    }
    if (line.length > this._max - this._size) {
      this._overflow();
      return;
    }
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case 'data':
        if (this._oversize) break;
        this._data.push(value);
        this._size += value.length + 1;
        this._hasData = true;
        break;
      case 'event':
        this._type = value;
        break;
      case 'id':
        if (value.indexOf('\0') === -1) {
          this._idBuffer = value;
          this._blockId = value;
        }
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) {
          // Clamp absurd values rather than keep a float or Infinity.
          this.retry = Math.min(Number(value), 2 ** 31 - 1);
          if (this._onRetry) this._onRetry(this.retry);
        }
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  _dispatch(events) {
    this.lastEventId = this._idBuffer;
    const id = this._blockId;
    this._blockId = null;
    this._size = 0;
    if (this._oversize) {
      this._oversize = false;
      this._type = '';
      if (this._onOversize) this._onOversize(this.lastEventId);
      return;
    }
    if (!this._hasData) {
      this._type = '';
      return;
    }
    const event = new SSEEvent(this._type || 'message', this._data.join('\n'), id, this.lastEventId);
    events.push(event);
    if (this._onEvent) this._onEvent(event);
    this._data = [];
    this._hasData = false;
    this._type = '';
  }
}
