// The client of the hub's HTTP API: `Client` publishes (`POST /publish`), reads topics and
// opens `Subscription`s (`GET /events`, or the Mercure endpoint), which reconnect by
// themselves and resume with the last event id.

import { SSEParser, RESET_EVENT, PRESENCE_EVENT } from './parser.js';

/** Reconnect delay before the hub has sent `retry:` (the hub's own default), ms. */
export const DEFAULT_RETRY_MS = 3000;
/** The largest event the fetch transport takes, in characters (a guard against a runaway stream). */
const DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024;
/** Internal: moves the position past a skipped event without delivering anything. */
const OVERSIZE = Symbol('oversize');
/** The Mercure endpoint's path. */
const MERCURE_PATH = '/.well-known/mercure';

/**
 * The hub refused a request, or a stream could not be used. `status` is the HTTP status (0
 * for a network or decoding fault); `message` and `field` come from the hub's JSON error.
 */
export class SSEHubError extends Error {
  constructor(status, message, field = null) {
    super(`${status ? `${status}: ` : ''}${message}${field ? ` (field ${field})` : ''}`);
    this.name = 'SSEHubError';
    this.status = status;
    this.hubMessage = message;
    this.field = field;
  }
}

async function errorOf(response) {
  let message = response.statusText || 'error';
  let field = null;
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      if (body.error !== undefined) message = String(body.error);
      if (typeof body.field === 'string') field = body.field;
    }
  } catch (_) {
    if (text.trim()) message = text.trim();
  }
  return new SSEHubError(response.status, message, field);
}

function topicList(topics) {
  const list = typeof topics === 'string' ? [topics] : Array.from(topics || []);
  if (list.length === 0) throw new TypeError('at least one topic is needed');
  return list;
}

/** Seconds of a `Retry-After` header (digits only), as ms; null otherwise. */
function retryAfterMs(response) {
  const value = response.headers.get('retry-after') || '';
  return /^[0-9]+$/.test(value) ? Number(value) * 1000 : null;
}

/**
 * Reconnect delays: the hub's `retry:` after a connection that worked, doubling on each
 * failure in a row up to `maxDelay` (never below `retry:`), times a random 1-1.25 so that
 * clients do not come back in step.
 */
export class Backoff {
  constructor(maxDelay = 30000, random = Math.random) {
    this.retryMs = DEFAULT_RETRY_MS;
    this.failures = 0;
    this.maxDelay = maxDelay;
    this._random = random;
  }

  /** The next delay in ms; `atLeast` (a `Retry-After`) raises it. */
  delay(atLeast = null) {
    let base = this.retryMs;
    if (this.failures) base = Math.max(base, 50); // `retry: 0` must not spin on failures
    let delay = Math.max(base, Math.min(this.maxDelay, base * 2 ** Math.min(this.failures, 16)));
    if (atLeast !== null) delay = Math.max(delay, atLeast);
    return delay * (1 + 0.25 * this._random());
  }
}

/** `globalThis` things a browser has and Node does not. */
const env = {
  get document() { return typeof document !== 'undefined' ? document : null; },
  get window() { return typeof window !== 'undefined' && typeof window.addEventListener === 'function' ? window : null; },
  get EventSource() { return typeof EventSource !== 'undefined' ? EventSource : null; },
  online() { return typeof navigator === 'undefined' || navigator.onLine !== false; },
  hidden() { return typeof document !== 'undefined' && document.visibilityState === 'hidden'; },
};

/**
 * Names `on()` takes that are not event types of the stream (an EventSource listener for
 * them would hear the connection's own `error`/`open`); the hub refuses `error` and `open` as
 * event names. `*` is every event; the control events are `on()` types of their own.
 */
const NOT_EVENT_TYPES = new Set(['*', 'error', 'open']);

/** What a subscription's `state` can be. */
export const State = Object.freeze({
  CONNECTING: 'connecting', // a request is under way
  OPEN: 'open', // the stream is being read
  WAITING: 'waiting', // waiting out a back-off delay
  PAUSED: 'paused', // offline, or hidden past `hiddenTimeout`: reconnects when that ends
  CLOSED: 'closed', // over: close(), the topics closed (204), or a refusal
});

/**
 * One subscription: connects, delivers events, reconnects with back-off and resumes after
 * the last event id, until `close()`, a `204` (its topics closed) or a refusal that a retry
 * will not fix (`400`, `401`/`403` with a fixed token, `404`).
 */
export class Subscription {
  constructor(client, topics, options = {}) {
    this.client = client;
    this.topics = topicList(topics);
    this.options = options;
    this.mercure = Boolean(options.mercure);
    this.state = State.CONNECTING;
    /** Connections opened so far. */
    this.connections = 0;
    this._backoff = new Backoff(options.maxDelay ?? 30000);
    this._listeners = new Map(); // event type -> Set of handlers
    this._queue = []; // events not yet taken by the async iterator, once there is one
    this._waiters = [];
    // Events are kept for `for await` from the start, unless handlers take them (onEvent or
    // on()): then only while an iterator runs, so that a callback user's memory stays flat.
    this._iterating = false;
    this._timer = null;
    this._abort = null; // AbortController of the fetch under way
    this._source = null; // the EventSource under way
    this._hiddenTimer = null;
    this._storage = options.storage || null;
    this._storageKey = options.storageKey || `ssehub:${this._baseUrl()}`;
    let start = options.lastEventId;
    if (start == null && this._storage) {
      try { start = this._storage.getItem(this._storageKey); } catch (_) { start = null; }
    }
    /** The position a reconnect resumes from: the last event id seen. */
    this.lastEventId = start || '';
    this.transport = this._pickTransport();
    this._onOnline = () => this._wake();
    this._onOffline = () => this._offline();
    this._onVisibility = () => this._visibility();
    const win = env.window;
    if (win) {
      win.addEventListener('online', this._onOnline);
      win.addEventListener('offline', this._onOffline);
    }
    if (env.document) env.document.addEventListener('visibilitychange', this._onVisibility);
    // Connect after the caller's synchronous code, so `on()` handlers are in place.
    // The first attempt is made even when the browser says it is offline (see _offline).
    queueMicrotask(() => this._connect(true));
  }

  _pickTransport() {
    const wanted = this.options.transport || 'auto';
    const needsHeaders = Boolean(this.client.token || this.options.headers);
    if (wanted === 'eventsource') {
      if (!env.EventSource) throw new TypeError('EventSource is not available here; use transport "fetch"');
      if (needsHeaders) throw new TypeError('EventSource cannot send headers; use transport "fetch" or a cookie');
      return 'eventsource';
    }
    if (wanted === 'fetch' || needsHeaders || !env.EventSource) return 'fetch';
    return 'eventsource';
  }

  /** The stream's URL without a position. */
  _baseUrl() {
    const params = new URLSearchParams();
    for (const t of this.topics) params.append('topic', t);
    if (this.options.presence && !this.mercure) params.append('presence', '1');
    return `${this.client.url}${this.mercure ? MERCURE_PATH : '/events'}?${params}`;
  }

  /**
   * Handlers for one event type (`message` for unnamed events, `ssehub-reset`, ...), or `*`
   * for every event that is not a control event. Returns a function that removes it. With
   * the EventSource transport only the types asked for here or in `options.events` reach
   * the page (EventSource has no catch-all); `*` then sees those.
   */
  on(type, handler) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(handler);
    if (this._source && !NOT_EVENT_TYPES.has(type)) this._listen(this._source, type);
    return () => this._listeners.get(type)?.delete(handler);
  }

  /**
   * Drops the stream and connects again at once, resuming after the last event id (after a
   * token change, say). Does nothing once closed.
   */
  reconnect() {
    if (this.state === State.CLOSED) return;
    clearTimeout(this._timer);
    this._drop();
    this._backoff.failures = 0;
    this._connect(true);
  }

  /** Stops the subscription: aborts the stream, cancels any reconnect, ends iteration. */
  close() {
    this._finish('closed');
  }

  /** `for await (const event of subscription)`: the events, until the subscription ends. */
  [Symbol.asyncIterator]() {
    this._iterating = true;
    return {
      next: () => {
        if (this._queue.length) return Promise.resolve({ value: this._queue.shift(), done: false });
        if (this.state === State.CLOSED) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this._waiters.push(resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  // -- connecting ---------------------------------------------------------------------------

  _connect(evenOffline = false) {
    this._timer = null;
    if (this.state === State.CLOSED) return;
    if (this._hiddenLongEnough()) {
      this._setState(State.PAUSED);
      return;
    }
    if (!evenOffline && !env.online()) {
      this._offline();
      return;
    }
    this._setState(State.CONNECTING);
    if (this.transport === 'eventsource') this._openEventSource();
    else this._openFetch().catch((err) => this._emitError(err));
  }

  _schedule(delay) {
    if (this.state === State.CLOSED) return;
    this._drop();
    this._setState(State.WAITING);
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), delay);
  }

  /** Reconnect at once (back online, page visible again), unless connected. */
  _wake() {
    if (this.state !== State.WAITING && this.state !== State.PAUSED) return;
    clearTimeout(this._timer);
    this._backoff.failures = 0;
    this._connect();
  }

  _pause() {
    if (this.state === State.CLOSED) return;
    clearTimeout(this._timer);
    this._drop();
    this._setState(State.PAUSED);
  }

  /**
   * Offline: drop the stream (it is likely dead without saying so) and wait for `online`.
   * The browser's flag can be wrong (a hub on localhost answers with no network at all), so
   * one attempt is still made every `maxDelay`.
   */
  _offline() {
    if (this.state === State.CLOSED) return;
    this._pause();
    this._timer = setTimeout(() => this._connect(true), this._backoff.maxDelay);
  }

  _hiddenLongEnough() {
    return this._hiddenSince != null && this.options.hiddenTimeout != null &&
      Date.now() - this._hiddenSince >= this.options.hiddenTimeout;
  }

  _visibility() {
    if (this.state === State.CLOSED) return;
    clearTimeout(this._hiddenTimer);
    if (env.hidden()) {
      this._hiddenSince = Date.now();
      if (this.options.hiddenTimeout != null) {
        this._hiddenTimer = setTimeout(() => this._pause(), this.options.hiddenTimeout);
      }
    } else {
      this._hiddenSince = null;
      this._wake();
    }
  }

  /** Ends the current connection, if any, without touching the state. */
  _drop() {
    if (this._abort) {
      this._abort.abort();
      this._abort = null;
    }
    if (this._source) {
      this._source.close();
      this._source = null;
    }
  }

  _finish(reason, error = null) {
    if (this.state === State.CLOSED) return;
    clearTimeout(this._timer);
    clearTimeout(this._hiddenTimer);
    this._drop();
    const win = env.window;
    if (win) {
      win.removeEventListener('online', this._onOnline);
      win.removeEventListener('offline', this._onOffline);
    }
    if (env.document) env.document.removeEventListener('visibilitychange', this._onVisibility);
    this._setState(State.CLOSED);
    /** Why it ended: `closed` (close()), `done` (topics closed), `refused` (see `error`). */
    this.reason = reason;
    this.error = error;
    for (const resolve of this._waiters.splice(0)) resolve({ value: undefined, done: true });
    this._call(this.options.onClose, { reason, error });
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._call(this.options.onState, state);
  }

  /** What to do with a response that is not a stream: retry after a back-off, or finish. */
  _refused(status, retryAfter, error) {
    if (status === 204) {
      this._finish('done');
      return;
    }
    // A token function may hand out a fresh token next time; a fixed token will not change.
    const tokenMayChange = typeof this.client.token === 'function' && (status === 401 || status === 403);
    if (status === 0 || status === 408 || status === 429 || status >= 500 || tokenMayChange) {
      this._backoff.failures += 1;
      this._emitError(error);
      this._schedule(this._backoff.delay(retryAfter));
      return;
    }
    this._emitError(error);
    this._finish('refused', error);
  }

  _opened() {
    this._backoff.failures = 0;
    this.connections += 1;
    this._setState(State.OPEN);
    this._call(this.options.onOpen, { connection: this.connections, lastEventId: this.lastEventId });
  }

  // -- fetch transport ----------------------------------------------------------------------

  async _openFetch() {
    const abort = new AbortController();
    this._abort = abort;
    const headers = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache', ...(this.options.headers || {}) };
    let token;
    try {
      token = await this.client._token();
    } catch (err) {
      if (abort.signal.aborted) return;
      this._abort = null;
      this._refused(0, null, new SSEHubError(0, `the token function failed: ${err.message || err}`));
      return;
    }
    if (abort.signal.aborted) return;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    let response;
    try {
      response = await this.client._fetch(this._baseUrl(), {
        headers,
        signal: abort.signal,
        cache: 'no-store',
        credentials: this.options.withCredentials ? 'include' : 'same-origin',
      });
    } catch (err) {
      if (abort.signal.aborted) return;
      this._refused(0, null, new SSEHubError(0, `connection failed: ${err.message || err}`));
      return;
    }
    if (abort.signal.aborted) return;
    const type = (response.headers.get('content-type') || '').split(';')[0].trim().toLowerCase();
    if (response.status !== 200 || type !== 'text/event-stream' || !response.body) {
      const error = response.status === 200
        ? new SSEHubError(200, `not an event stream (content type ${type || 'missing'})`)
        : await errorOf(response);
      if (abort.signal.aborted) return;
      this._refused(response.status === 200 ? 400 : response.status, retryAfterMs(response), error);
      return;
    }
    this._opened();
    const parser = new SSEParser({
      lastEventId: this.lastEventId,
      onRetry: (ms) => { this._backoff.retryMs = ms; },
      maxEventSize: this.options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE,
      onOversize: (id) => {
        // Skipped, but its id counts: a reconnect must not fetch it again and again.
        this._deliver(OVERSIZE, '', null, id);
        this._emitError(new SSEHubError(0, `event ${id || '(no id)'} skipped: over maxEventSize`));
      },
    });
    const reader = response.body.getReader();
    const readTimeout = this.options.readTimeout ?? 60000;
    let idle = null;
    const arm = () => {
      if (!readTimeout) return;
      clearTimeout(idle);
      // No byte (event or heartbeat) for this long: a dead connection; reconnect.
      idle = setTimeout(() => abort.abort(new Error('read timeout')), readTimeout);
    };
    let failed = false;
    try {
      arm();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        for (const event of parser.feed(value)) {
          if (abort.signal.aborted) return;
          this._deliver(event.event, event.data, event.id, event.lastEventId);
        }
      }
      parser.end();
    } catch (_) {
      failed = true;
    } finally {
      clearTimeout(idle);
    }
    if (this._abort !== abort) return; // closed or replaced meanwhile
    if (abort.signal.aborted && abort.signal.reason?.message !== 'read timeout') return;
    this._abort = null;
    if (failed) this._backoff.failures += 1;
    this._schedule(this._backoff.delay());
  }

  // -- EventSource transport ----------------------------------------------------------------

  _openEventSource() {
    let url = this._baseUrl();
    // EventSource sends Last-Event-ID only on its own reconnects; the first request names
    // the position in the query (the header wins when both are sent).
    if (this.lastEventId) {
      url += `&${this.mercure ? 'lastEventID' : 'lastEventId'}=${encodeURIComponent(this.lastEventId)}`;
    }
    const source = new (env.EventSource)(url, { withCredentials: Boolean(this.options.withCredentials) });
    this._source = source;
    let openedAt = null; // when this source last opened
    let droppedAt = null; // when its stream last dropped (the browser then waits `retry:`)
    source.onopen = () => {
      if (this._source !== source) return;
      openedAt = Date.now();
      droppedAt = null;
      this._opened();
    };
    source.onerror = () => {
      if (this._source !== source) return;
      if (source.readyState === 2 /* CLOSED */) {
        // Failed (a status other than 200, or not an event stream): EventSource does not
        // say which, so ask once with fetch, the same way, and act on the status.
        this._source = null;
        this._probe(url);
        return;
      }
      // The stream dropped and the browser reconnects after the hub's `retry:` (which
      // EventSource keeps to itself). Let it do that once; if that attempt fails too, take
      // over with our back-off, using the time the browser waited as the retry value.
      if (droppedAt === null && openedAt !== null) {
        droppedAt = Date.now();
        this._setState(State.CONNECTING);
        return;
      }
      const waited = droppedAt === null ? 0 : Date.now() - droppedAt;
      if (waited > 0) this._backoff.retryMs = Math.min(waited, this._backoff.maxDelay);
      this._source = null;
      source.close();
      this._backoff.failures += 1;
      this._emitError(new SSEHubError(0, 'connection lost'));
      this._schedule(this._backoff.delay());
    };
    for (const type of this._eventSourceTypes()) this._listen(source, type);
  }

  _eventSourceTypes() {
    const types = new Set(['message', RESET_EVENT, ...(this.options.events || [])]);
    if (this.options.presence) types.add(PRESENCE_EVENT);
    for (const type of this._listeners.keys()) if (!NOT_EVENT_TYPES.has(type)) types.add(type);
    return types;
  }

  _listen(source, type) {
    source._ssehubTypes = source._ssehubTypes || new Set();
    if (source._ssehubTypes.has(type)) return;
    source._ssehubTypes.add(type);
    source.addEventListener(type, (e) => {
      if (this._source !== source) return;
      this._deliver(e.type, e.data, undefined, e.lastEventId);
    });
  }

  async _probe(url) {
    const abort = new AbortController();
    this._abort = abort;
    let status = 0;
    let retryAfter = null;
    let error;
    try {
      const response = await this.client._fetch(url, {
        headers: { Accept: 'text/event-stream' },
        signal: abort.signal,
        cache: 'no-store',
        credentials: this.options.withCredentials ? 'include' : 'same-origin',
      });
      status = response.status;
      retryAfter = retryAfterMs(response);
      if (status === 200) {
        abort.abort(); // it would have worked now: reconnect below, after a back-off
        error = new SSEHubError(0, 'the stream failed');
      } else {
        error = await errorOf(response);
      }
    } catch (err) {
      if (this._abort !== abort) return;
      error = new SSEHubError(0, `connection failed: ${err.message || err}`);
    }
    if (this._abort !== abort) return;
    this._abort = null;
    this._refused(status === 200 ? 0 : status, retryAfter, error);
  }

  // -- delivery -----------------------------------------------------------------------------

  _deliver(type, text, id, lastEventId) {
    if (this.state === State.CLOSED) return;
    if (type === RESET_EVENT) {
      let info;
      try { info = JSON.parse(text); } catch (_) { info = { reason: 'unknown', lastEventId: this.lastEventId }; }
      this._call(this.options.onReset, info);
      this._emit(type, info);
      return;
    }
    if (type === PRESENCE_EVENT) {
      let info;
      try { info = JSON.parse(text); } catch (_) { return; }
      this._call(this.options.onPresence, info);
      this._emit(type, info);
      return;
    }
    // Control events carry no id; every other event moves the position.
    if (lastEventId !== undefined && lastEventId !== this.lastEventId) {
      this.lastEventId = lastEventId;
      if (this._storage) {
        try { this._storage.setItem(this._storageKey, lastEventId); } catch (_) { /* full or denied */ }
      }
    }
    if (type === OVERSIZE) return;
    let data = text;
    const decode = this.options.decode || (this.options.json ? JSON.parse : null);
    if (decode) {
      try {
        data = decode(text, type);
      } catch (err) {
        this._emitError(new SSEHubError(0, `could not decode event ${lastEventId || '(no id)'}: ${err.message}`));
        return;
      }
    }
    // The fetch transport knows each block's own id (null when it had none); EventSource
    // only gives the stream's last event id.
    const event = {
      event: type, data, text, id: id === undefined ? (lastEventId || null) : id, lastEventId: this.lastEventId,
    };
    this._call(this.options.onEvent, event);
    this._emit('*', event);
    this._emit(type, event);
    if (this._waiters.length) this._waiters.shift()({ value: event, done: false });
    else if (this._iterating || !this._handled()) this._queue.push(event);
  }

  /** Whether handlers take the events (then they are not kept for an iterator). */
  _handled() {
    if (this.options.onEvent) return true;
    for (const [type, set] of this._listeners) if (set.size && !NOT_EVENT_TYPES.has(type)) return true;
    return false;
  }

  _emit(type, value) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const handler of Array.from(set)) this._call(handler, value);
  }

  _emitError(error) {
    this._call(this.options.onError, error);
    this._emit('error', error);
  }

  _call(fn, value) {
    if (typeof fn !== 'function') return;
    try {
      fn(value);
    } catch (err) {
      // A handler's fault must not break the stream; report it where it can be seen (the
      // page's error event, or Node's uncaught exception, as an EventSource listener's would).
      if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
      else setTimeout(() => { throw err; }, 0);
    }
  }
}

/**
 * A client of one hub. `url` is the hub's base URL (in a page, '' or omitted means the
 * page's own origin). Options: `token` (a JWT string, or a function returning one or a
 * promise of one, asked before each request; sent as `Authorization: Bearer`), `fetch` (a
 * fetch implementation, default the global one).
 */
export class Client {
  constructor(url = '', options = {}) {
    if (typeof url === 'object' && url !== null) {
      options = url;
      url = options.url || '';
    }
    this.url = String(url).replace(/\/+$/, '');
    this.token = options.token || null;
    this._fetchImpl = options.fetch || null;
  }

  _fetch(url, init) {
    const f = this._fetchImpl || globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('fetch is not available: pass options.fetch');
    return f(url, init);
  }

  async _token() {
    const t = this.token;
    return typeof t === 'function' ? t() : t;
  }

  async _request(method, path, body) {
    const headers = {};
    const token = await this._token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await this._fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status !== 200) throw await errorOf(response);
    return response.json();
  }

  /**
   * Opens a subscription to one topic or a list; see `Subscription` and the README for the
   * options (`lastEventId`, `storage`, `json`, `decode`, `onEvent`, `onReset`, `mercure`, ...).
   */
  subscribe(topics, options = {}) {
    return new Subscription(this, topics, options);
  }

  /**
   * `POST /publish`: `data` a string or any JSON value (sent as its JSON text). Options:
   * `event`, `id`, `retry` (ms), `close`, `private`. Resolves `{id, delivered}`; a refusal
   * rejects with `SSEHubError`. With `mercure: true`, a Mercure publish instead (form
   * fields; `event` becomes `type`; no `close`), resolving `{id}`.
   */
  publish(topic, data, options = {}) {
    const topics = topicList(topic);
    if (options.mercure) return this._publishMercure(topics, data, options);
    const body = { topic: topics.length === 1 ? topics[0] : topics, data };
    for (const key of ['event', 'id', 'retry']) if (options[key] != null) body[key] = options[key];
    if (options.close) body.close = true;
    if (options.private) body.private = true;
    return this._request('POST', '/publish', body);
  }

  /** The Mercure form of publish: the first topic canonical, the rest alternates. */
  async _publishMercure(topics, data, options) {
    const form = new URLSearchParams();
    for (const t of topics) form.append('topic', t);
    form.append('data', typeof data === 'string' ? data : JSON.stringify(data));
    if (options.event != null) form.append('type', options.event);
    if (options.id != null) form.append('id', options.id);
    if (options.retry != null) form.append('retry', String(options.retry));
    if (options.private) form.append('private', 'on');
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const token = await this._token();
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await this._fetch(this.url + MERCURE_PATH, { method: 'POST', headers, body: form.toString() });
    if (response.status !== 200) throw await errorOf(response);
    return { id: (await response.text()).trim() };
  }

  /**
   * Publishes each message (`{topic, data, ...options}` or `[topic, data]`). `concurrency` 1
   * (the default) publishes in order, so ids increase in that order; more sends that many at
   * once. Resolves the answers in the messages' order.
   */
  async publishMany(messages, { concurrency = 1 } = {}) {
    const list = Array.from(messages, (m) => (Array.isArray(m) ? { topic: m[0], data: m[1] } : m));
    const one = ({ topic, data, ...options }) => this.publish(topic, data, options);
    const answers = new Array(list.length);
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const i = next;
        next += 1;
        answers[i] = await one(list[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, list.length)) }, worker));
    return answers;
  }

  /** `GET /topics`: each topic with its subscribers and last event id. */
  async topics() {
    return (await this._request('GET', '/topics')).topics;
  }

  /** `GET /topics/{topic}`. */
  topic(topic) {
    return this._request('GET', `/topics/${encodeURIComponent(topic)}`);
  }

  /** `DELETE /topics/{topic}`: closes the topic; its subscriptions end. */
  closeTopic(topic) {
    return this._request('DELETE', `/topics/${encodeURIComponent(topic)}`);
  }
}

/** Shorthand: `subscribe(url, topics, options)` = `new Client(url, options).subscribe(topics, options)`. */
export function subscribe(url, topics, options = {}) {
  return new Client(url, options).subscribe(topics, options);
}

/** Shorthand: `publish(url, topic, data, options)`; `options.token` authenticates. */
export function publish(url, topic, data, options = {}) {
  return new Client(url, options).publish(topic, data, options);
}
