// Types of the ssehub client (src/index.js; the browser build dist/ssehub.js puts the same
// names on `globalThis.ssehub`).

/** The hub's control event meaning "you may have missed events". */
export const RESET_EVENT: 'ssehub-reset';
/** The hub's presence control event (subscriptions with `presence: true`). */
export const PRESENCE_EVENT: 'ssehub-presence';
/** Reconnect delay before the hub has sent `retry:`, ms. */
export const DEFAULT_RETRY_MS: number;

/** One event as the parser dispatches it. */
export class SSEEvent {
  constructor(event: string, data: string, id: string | null, lastEventId: string);
  /** The event type: `message` when the server named none. */
  readonly event: string;
  /** The data lines joined with LF. */
  readonly data: string;
  /** The id of this event's block, or null when it had no `id:` line. */
  readonly id: string | null;
  /** The stream's last event id after this event. */
  readonly lastEventId: string;
  json<T = unknown>(): T;
  readonly isReset: boolean;
}

export interface SSEParserOptions {
  /** The last event id to start from. */
  lastEventId?: string;
  onRetry?(ms: number): void;
  /** A comment line's text after the colon (a leading space kept). */
  onComment?(text: string): void;
  onEvent?(event: SSEEvent): void;
  /** Characters an event's data (or any one line) may have; a bigger event is skipped. */
  maxEventSize?: number;
  /** Told of each skipped event, with the last event id after it. */
  onOversize?(lastEventId: string): void;
}

/** The incremental event-stream parser (WHATWG rules). */
export class SSEParser {
  constructor(options?: SSEParserOptions);
  /** The committed last event id: what a reconnect sends as `Last-Event-ID`. */
  readonly lastEventId: string;
  /** The last valid `retry:` value in ms, or null. */
  readonly retry: number | null;
  /** Parses a chunk; returns the events it completes. */
  feed(chunk: Uint8Array | ArrayBuffer | string): SSEEvent[];
  /** Ends the stream: an unterminated line and an undispatched event are discarded. */
  end(): SSEEvent[];
}

/** Splits decoded text into lines (CRLF, LF, lone CR) across chunks. */
export class LineSplitter {
  push(text: string, onLine: (line: string) => void): void;
  /** Drops the unterminated tail and the rest of its line. */
  discardLine(): void;
  readonly tail: string;
  reset(): void;
}

/** A refusal from the hub (`status` its HTTP status), or a network/decoding fault (`status` 0). */
export class SSEHubError extends Error {
  readonly status: number;
  /** The hub's `error` text. */
  readonly hubMessage: string;
  /** The field at fault, when the hub named one. */
  readonly field: string | null;
}

/** Reconnect delays: `retry:` after a good connection, doubling per failure, capped, jittered 1-1.25. */
export class Backoff {
  constructor(maxDelay?: number, random?: () => number);
  retryMs: number;
  failures: number;
  maxDelay: number;
  delay(atLeast?: number | null): number;
}

export type SubscriptionState = 'connecting' | 'open' | 'waiting' | 'paused' | 'closed';
export const State: {
  readonly CONNECTING: 'connecting';
  readonly OPEN: 'open';
  readonly WAITING: 'waiting';
  readonly PAUSED: 'paused';
  readonly CLOSED: 'closed';
};

/** A token, or a function asked before each request (a refresh hook). */
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

export interface ClientOptions {
  /** Sent as `Authorization: Bearer`; forces fetch streaming for subscriptions. */
  token?: TokenSource | null;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

/** One delivered event, its data decoded when the subscription asked for it. */
export interface HubEvent<T = string> {
  /** The event type (`message` when the publisher named none). */
  event: string;
  /** The data: the text, or what `json`/`decode` made of it. */
  data: T;
  /** The raw data text. */
  text: string;
  /** The event's id (with EventSource: the stream's last event id). */
  id: string | null;
  /** The subscription's position after this event. */
  lastEventId: string;
}

/** `ssehub-reset`: events may have been missed; refetch your state. */
export interface ResetInfo {
  reason: 'expired' | 'unknown' | string;
  lastEventId: string;
}

export interface PresenceInfo {
  topic: string;
  action: 'join' | 'leave' | 'snapshot' | 'count';
  subscribers: number;
}

export interface CloseInfo {
  /** `closed`: close() was called; `done`: the topics were closed (204); `refused`: see error. */
  reason: 'closed' | 'done' | 'refused';
  error: SSEHubError | null;
}

export interface SubscribeOptions<T = string> {
  /** Resume after this id (wins over storage). */
  lastEventId?: string;
  /** Where the position is kept across page loads (localStorage, sessionStorage, or alike). */
  storage?: Pick<Storage, 'getItem' | 'setItem'> | null;
  /** The storage key (default `ssehub:<stream URL>`). */
  storageKey?: string;
  /** Decode each event's data as JSON. */
  json?: boolean;
  /** Decode each event's data with this (wins over `json`); a throw reports and skips the event. */
  decode?: (text: string, type: string) => T;
  /** Subscribe through `/.well-known/mercure` instead of `/events`. */
  mercure?: boolean;
  /** Also receive `ssehub-presence` events (native endpoint). */
  presence?: boolean;
  /** `auto` (default): EventSource unless a header is needed or EventSource is missing. */
  transport?: 'auto' | 'fetch' | 'eventsource';
  /** Send cookies cross-origin (EventSource `withCredentials`, fetch `credentials: include`). */
  withCredentials?: boolean;
  /** Extra request headers (forces fetch streaming). */
  headers?: Record<string, string>;
  /** Event types to listen for with EventSource besides `message` and those given to `on()`. */
  events?: string[];
  /** Longest back-off delay, ms (default 30000). */
  maxDelay?: number;
  /** fetch streaming: the largest event taken, in characters (16 Mi); a bigger one is skipped and reported. */
  maxEventSize?: number;
  /** fetch streaming: ms without a byte after which the connection counts as dead (default 60000; 0 off). */
  readTimeout?: number;
  /** Disconnect after the page has been hidden this long (ms); reconnect when it shows again. */
  hiddenTimeout?: number | null;
  onEvent?(event: HubEvent<T>): void;
  onReset?(info: ResetInfo): void;
  onPresence?(info: PresenceInfo): void;
  onOpen?(info: { connection: number; lastEventId: string }): void;
  onError?(error: SSEHubError): void;
  onState?(state: SubscriptionState): void;
  onClose?(info: CloseInfo): void;
}

export class Subscription<T = string> implements AsyncIterable<HubEvent<T>> {
  readonly client: Client;
  readonly topics: string[];
  readonly state: SubscriptionState;
  readonly transport: 'fetch' | 'eventsource';
  /** The position a reconnect resumes from. */
  readonly lastEventId: string;
  /** Connections opened so far. */
  readonly connections: number;
  /** Why it ended, once closed. */
  readonly reason?: CloseInfo['reason'];
  readonly error?: SSEHubError | null;
  on(type: 'ssehub-reset', handler: (info: ResetInfo) => void): () => void;
  on(type: 'ssehub-presence', handler: (info: PresenceInfo) => void): () => void;
  on(type: 'error', handler: (error: SSEHubError) => void): () => void;
  /** `*` for every event that is not a control event. */
  on(type: string, handler: (event: HubEvent<T>) => void): () => void;
  /** Drops the stream and connects again at once, resuming after the last event id. */
  reconnect(): void;
  close(): void;
  [Symbol.asyncIterator](): AsyncIterator<HubEvent<T>>;
}

export interface PublishOptions {
  event?: string;
  id?: string;
  retry?: number;
  close?: boolean;
  private?: boolean;
  /** Publish through `/.well-known/mercure` (form fields; `event` is sent as `type`; no `close`). */
  mercure?: boolean;
}

export interface PublishResult {
  id: string;
  /** Subscribers reached on this hub (not given by a Mercure publish). */
  delivered?: number;
}

export interface TopicInfo {
  topic: string;
  subscribers: number;
  lastEventId: string | null;
  closed: boolean;
}

export type PublishMessage = [topic: string | string[], data: unknown] |
  ({ topic: string | string[]; data: unknown } & PublishOptions);

export class Client {
  constructor(url?: string, options?: ClientOptions);
  constructor(options: ClientOptions & { url?: string });
  readonly url: string;
  token: TokenSource | null;
  subscribe<T = string>(topics: string | string[], options?: SubscribeOptions<T>): Subscription<T>;
  publish(topic: string | string[], data: unknown, options?: PublishOptions): Promise<PublishResult>;
  publishMany(messages: Iterable<PublishMessage>, options?: { concurrency?: number }): Promise<PublishResult[]>;
  topics(): Promise<TopicInfo[]>;
  topic(topic: string): Promise<TopicInfo>;
  closeTopic(topic: string): Promise<PublishResult>;
}

export function subscribe<T = string>(
  url: string, topics: string | string[], options?: SubscribeOptions<T> & ClientOptions): Subscription<T>;
export function publish(
  url: string, topic: string | string[], data: unknown, options?: PublishOptions & ClientOptions): Promise<PublishResult>;

export interface MintOptions {
  publish?: Iterable<string>;
  subscribe?: Iterable<string>;
  /** Unix seconds, a Date, or `{ seconds }` from now. */
  exp?: number | Date | { seconds: number };
  payload?: unknown;
  algorithm?: 'HS256' | 'HS384' | 'HS512';
  claims?: Record<string, unknown>;
}

/** An HMAC-signed token with the Mercure claim, signed with WebCrypto. */
export function mintToken(secret: string | Uint8Array, options?: MintOptions): Promise<string>;
