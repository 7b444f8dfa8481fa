// The parser against the shared SSE conformance vectors (shared/reference/sse-vectors beside
// the checkout; its README gives their origins and licences): every stream fed in its given
// chunks, whole, one byte at a time and in seeded random splits; all feedings must agree and
// match the expectation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SSEParser, LineSplitter } from '../src/parser.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const VECTOR_DIR = process.env.SSE_VECTORS ||
  path.resolve(here, '..', '..', '..', '..', 'shared', 'reference', 'sse-vectors');

function files(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out.sort();
}

function hexBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** The stream bytes and the lengths of its given chunks. */
function chunks(vector) {
  const parts = vector.chunks.map((c) => ('text' in c ? new TextEncoder().encode(c.text) : hexBytes(c.hex)));
  return [concat(parts), parts.map((p) => p.length)];
}

/** A small seeded generator (mulberry32), so every run cuts the same way. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function splits(len, given) {
  const all = [['given chunks', given], ['whole', [len]], ['byte by byte', Array(len).fill(1)]];
  for (const seed of [1, 2, 0xc0ffee]) {
    const next = rng(seed ^ len);
    const lengths = [];
    let left = len;
    while (left > 0) {
      const r = next();
      const n = Math.min(left, r < 0.1 ? 0 : r < 0.6 ? 1 + Math.floor(next() * 4) : 1 + Math.floor(next() * 256));
      lengths.push(n);
      left -= n;
    }
    all.push([`random split ${seed}`, lengths]);
  }
  return all;
}

/** Everything the parser reports for one feeding, in order. */
function parse(stream, split) {
  const items = [];
  const parser = new SSEParser({
    onRetry: (ms) => items.push({ retry: ms }),
    onComment: (text) => items.push({ comment: text }),
    onEvent: (e) => items.push({ event: e.event, data: e.data, id: e.lastEventId }),
  });
  let at = 0;
  for (const n of split) {
    parser.feed(stream.subarray(at, at + n));
    at += n;
  }
  parser.end();
  return { items, finalLastEventId: parser.lastEventId };
}

function parseAllWays(stream, given) {
  const ways = splits(stream.length, given);
  const first = parse(stream, ways[0][1]);
  for (const [how, split] of ways.slice(1)) {
    assert.deepEqual(parse(stream, split), first, `feeding ${how} differs from the given chunks`);
  }
  return first;
}

const events = (o) => o.items.filter((i) => 'event' in i);
const retries = (o) => o.items.filter((i) => 'retry' in i).map((i) => i.retry);
const comments = (o) => o.items.filter((i) => 'comment' in i).map((i) => i.comment);
const wantEvent = (e) => ({ event: e.event, data: e.data, id: e.id });

function checkCommon(expected, got) {
  if ('final_last_event_id' in expected) assert.equal(got.finalLastEventId, expected.final_last_event_id, 'final last event id');
  if ('retry_updates' in expected) assert.deepEqual(retries(got), expected.retry_updates, 'retry updates');
}

function runSseVector(vector) {
  const [stream, given] = chunks(vector);
  const got = parseAllWays(stream, given);
  assert.deepEqual(events(got), vector.expected.events.map(wantEvent), 'events');
  checkCommon(vector.expected, got);
  for (const list of [vector.expected.comments, vector.comments]) {
    if (Array.isArray(list)) assert.deepEqual(comments(got), list, 'comments');
  }
}

function generate(g) {
  let text;
  if (g.kind === 'repeat_stream') text = g.unit_text.repeat(g.count);
  else if (g.kind === 'long_line') text = g.prefix + g.fill_char.repeat(g.fill_count) + g.suffix;
  else throw new Error(`unknown generator kind ${g.kind}`);
  const stream = new TextEncoder().encode(text);
  const lengths = Array(Math.floor(stream.length / g.chunk_bytes)).fill(g.chunk_bytes);
  if (stream.length % g.chunk_bytes) lengths.push(stream.length % g.chunk_bytes);
  return [stream, lengths];
}

/** Schema sse-conformance-vectors/1: events also carry the retry value seen since the last one. */
function runConformanceVector(vector) {
  const [stream, given] = vector.generator ? generate(vector.generator) : chunks(vector);
  // The generated streams are large: the given chunking and one random split are enough.
  const got = vector.generator ? parse(stream, given) : parseAllWays(stream, given);
  if (vector.generator) assert.deepEqual(parse(stream, splits(stream.length, given)[3][1]), got);
  const spec = vector.expected.events;
  let want;
  if (Array.isArray(spec)) {
    want = spec.map((e) => ({ ...wantEvent(e), retry: e.retry ?? null }));
  } else if (spec.kind === 'repeat') {
    want = Array(spec.count).fill({ ...wantEvent(spec.event), retry: spec.event.retry ?? null });
  } else if (spec.kind === 'single_fill_event') {
    want = [{ event: spec.event, data: spec.fill_char.repeat(spec.fill_count), id: spec.id, retry: spec.retry ?? null }];
  } else {
    throw new Error(`unknown expected.events kind ${spec.kind}`);
  }
  const attached = [];
  let pending = null;
  for (const item of got.items) {
    if ('retry' in item) pending = item.retry;
    else if ('event' in item) { attached.push({ ...item, retry: pending }); pending = null; }
  }
  assert.deepEqual(attached, want, 'events (with retry attachment)');
  checkCommon(vector.expected, got);
}

/** Schema sse-line-vectors/1: the line splitter reports exactly the terminated lines. */
function runLineVector(vector) {
  const [stream, given] = chunks(vector);
  for (const [how, split] of splits(stream.length, given)) {
    const lines = [];
    const splitter = new LineSplitter();
    const decoder = new TextDecoder();
    let at = 0;
    for (const n of split) {
      splitter.push(decoder.decode(stream.subarray(at, at + n), { stream: true }), (l) => lines.push(l));
      at += n;
    }
    splitter.push(decoder.decode(), (l) => lines.push(l));
    assert.deepEqual(lines, vector.expected_terminated_lines, `lines (${how})`);
    assert.equal(splitter.tail, vector.unterminated_tail, `tail (${how})`);
  }
}

/** Expectations of the raw .sse streams, from the vectors' README. */
const SSE_FILES = {
  'one-event': [['patch', 499]],
  'two-events': [['one', 'One'], ['two', 'Two']],
  'persistent-event-id': [['one', '1'], ['two', '1'], ['three', '3'], ['four', '3']],
  'big-event-followed-by-another': [['patch', 1395107], ['patch', 499]],
};

function runSseFile(file) {
  const stream = new Uint8Array(fs.readFileSync(file));
  const key = Object.keys(SSE_FILES).find((k) => path.basename(file).startsWith(k));
  assert.ok(key, `no expectation for ${file}`);
  const got = events(parse(stream, Array(Math.ceil(stream.length / 1000)).fill(1000).map((n, i) => Math.min(n, stream.length - i * 1000))));
  assert.equal(got.length, SSE_FILES[key].length, 'event count');
  SSE_FILES[key].forEach(([type, want], i) => {
    assert.equal(got[i].event, type);
    if (key === 'persistent-event-id') assert.equal(got[i].id, want);
    else if (typeof want === 'number') assert.equal(new TextEncoder().encode(got[i].data).length, want);
    else assert.equal(got[i].data, want);
  });
}

test('the parser passes every shared SSE vector', () => {
  assert.ok(fs.existsSync(VECTOR_DIR),
    `SSE vector directory not found at ${VECTOR_DIR} (expected shared/reference/sse-vectors beside the checkout, or SSE_VECTORS)`);
  const failures = [];
  let run = 0;
  for (const file of files(VECTOR_DIR)) {
    const name = path.relative(VECTOR_DIR, file);
    if (file.endsWith('.sse')) {
      run += 1;
      try { runSseFile(file); } catch (err) { failures.push(`${name}: ${err.message}`); }
      continue;
    }
    if (!file.endsWith('.json')) continue;
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    const runner = {
      'sse-vectors/1': runSseVector,
      'sse-conformance-vectors/1': runConformanceVector,
      'sse-line-vectors/1': runLineVector,
    }[doc.schema];
    assert.ok(runner, `${name}: unknown schema ${doc.schema}`);
    for (const vector of doc.vectors) {
      run += 1;
      try { runner(vector); } catch (err) { failures.push(`${name} / ${vector.id}: ${err.message.slice(0, 600)}`); }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} vector(s) failed`);
  assert.ok(run > 150, `only ${run} vectors were run: the vector files are incomplete`);
});
