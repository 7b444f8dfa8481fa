// The package's shape: the hand-written types declare exactly what the module exports, the
// browser build is current (also checked by `npm test` before the tests run) and exposes the
// same names, and the package has no runtime dependencies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

import * as ssehub from '../src/index.js';
import { build } from '../scripts/bundle.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('index.d.ts declares every export, and nothing more', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:class|function|const) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), Object.keys(ssehub).sort());
});

test('the browser build is current and exposes the same names', () => {
  const text = fs.readFileSync(path.join(root, 'dist', 'ssehub.js'), 'utf8');
  assert.equal(text, build(), 'dist/ssehub.js is out of date: npm run build');
  const context = { TextDecoder, TextEncoder, URLSearchParams, queueMicrotask, setTimeout, clearTimeout };
  context.globalThis = context;
  vm.createContext(context);
  vm.runInContext(text, context);
  assert.deepEqual(Object.keys(context.ssehub).sort(), Object.keys(ssehub).sort());
  const parser = new context.ssehub.SSEParser();
  assert.equal(parser.feed('id: 1\ndata: a\n\n')[0].data, 'a');
});

test('no runtime dependencies', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies, undefined);
  for (const file of fs.readdirSync(path.join(root, 'src'))) {
    const text = fs.readFileSync(path.join(root, 'src', file), 'utf8');
    for (const m of text.matchAll(/^import .* from '([^']+)';/gm)) assert.ok(m[1].startsWith('./'), `${file} imports ${m[1]}`);
  }
});
