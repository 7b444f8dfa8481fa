// ssehub: subscribe to a hub's topics (native API or Mercure endpoint) with reconnection,
// back-off and resume; publish; mint tokens; parse event streams.
export { SSEParser, SSEEvent, LineSplitter, RESET_EVENT, PRESENCE_EVENT } from './parser.js';
export {
  Client, Subscription, SSEHubError, Backoff, State, DEFAULT_RETRY_MS, subscribe, publish,
} from './client.js';
export { mintToken } from './token.js';
