// The parser's own cases beside the shared vectors: line ends across chunks, the id and
// retry rules, and the size guard, each fed whole, byte by byte and cut at every position.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SSEParser } from '../src/parser.js';

function parse(chunks, options = {}) {
  const skipped = [];
  const parser = new SSEParser({ ...options, onOversize: (id) => skipped.push(id) });
  const events = [];
  for (const c of chunks) events.push(...parser.feed(c));
  events.push(...parser.end());
  return { events: events.map((e) => [e.event, e.data, e.id, e.lastEventId]), last: parser.lastEventId, retry: parser.retry, skipped };
}

/** The same result whole, byte by byte and cut in two at every position. */
function everywhere(text, options) {
  const bytes = new TextEncoder().encode(text);
  const whole = parse([bytes], options);
  assert.deepEqual(parse(Array.from(bytes, (b) => Uint8Array.of(b)), options), whole, 'byte by byte');
  for (let i = 1; i < bytes.length; i += 1) {
    assert.deepEqual(parse([bytes.subarray(0, i), bytes.subarray(i)], options), whole, `cut at ${i}`);
  }
  return whole;
}

test('line ends: LF, CR, CRLF, mixed, and CR at the end of a chunk', () => {
  for (const sep of ['\n', '\r', '\r\n']) {
    assert.deepEqual(everywhere(`data: a${sep}data: b${sep}${sep}data: c${sep}${sep}`).events.map((e) => e[1]), ['a\nb', 'c']);
  }
  assert.deepEqual(parse(['data: a\r', '\n', '\r', '\ndata: b\n\n']).events.map((e) => e[1]), ['a', 'b']);
});

test('ids: kept across events, NUL ignored, empty resets, committed at dispatch only', () => {
  const r = everywhere('id: 1\ndata: a\n\nevent: ssehub-reset\ndata: {}\n\nid: x\0y\ndata: b\n\nid\n\nid: 9\ndata: c');
  assert.deepEqual(r.events, [['message', 'a', '1', '1'], ['ssehub-reset', '{}', null, '1'], ['message', 'b', null, '1']]);
  assert.equal(r.last, '', 'the empty id reset it; the unterminated block with id 9 does not count');
});

test('retry: ASCII digits only', () => {
  assert.equal(everywhere('retry: 1500\n\n').retry, 1500);
  for (const bad of ['15x', '-1', '1.5', '', ' 10']) assert.equal(parse([`retry: 100\nretry: ${bad}\n\n`]).retry, 100, bad);
});

test('an event over maxEventSize is skipped, its id counts, the stream goes on', () => {
  const big = 'x'.repeat(50);
  const r = everywhere(
    `data: ok\n\nid: 7\ndata: ${big}\ndata: more\n\nid: 8\ndata: fine\n\nevent: ${big}\ndata: x\n\n: ${big}\ndata: after\n\n`,
    { maxEventSize: 20 });
  assert.deepEqual(r.events, [['message', 'ok', null, ''], ['message', 'fine', '8', '8'], ['message', 'after', null, '8']]);
  assert.deepEqual(r.skipped, ['7', '8'], 'the big event, and the one with a long event: line');
  // Several lines that each fit but together do not.
  assert.deepEqual(everywhere('data: 123456789\ndata: 123456789\ndata: 1\n\n', { maxEventSize: 20 }).skipped, ['']);
  // Within the limit, nothing changes.
  assert.deepEqual(everywhere(`data: ${big}\n\n`, { maxEventSize: 60 }).events, [['message', big, null, '']]);
});
