// Builds dist/ssehub.js, the browser file the hub serves at /ssehub.js: the modules of src/
// in dependency order, their imports dropped and `export` keywords removed, inside one
// function that puts the public names (those src/index.js exports) on `globalThis.ssehub`
// (and on `module.exports` under CommonJS). `--check` fails when dist/ is out of date.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODULES = ['parser.js', 'client.js', 'token.js']; // each only imports from earlier ones
const OUT = path.join(root, 'dist', 'ssehub.js');

export function build() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const index = fs.readFileSync(path.join(root, 'src', 'index.js'), 'utf8');
  const names = [];
  for (const m of index.matchAll(/export\s*\{([^}]*)\}\s*from/g)) {
    names.push(...m[1].split(',').map((n) => n.trim()).filter(Boolean));
  }
  const bodies = MODULES.map((file) => {
    const text = fs.readFileSync(path.join(root, 'src', file), 'utf8');
    const body = text
      .replace(/^import [^;]*;\n/gm, '')
      .replace(/^export (const|class|function|async function) /gm, '$1 ');
    if (/^\s*(import|export)\b/m.test(body)) throw new Error(`${file}: an import or export the bundler does not handle`);
    return `// --- src/${file}\n${body}`;
  });
  return `/*! ssehub ${pkg.version}: the browser build of the ssehub client (served by the hub at /ssehub.js). */
(function (root) {
'use strict';
${bodies.join('\n')}
const ssehub = { ${names.join(', ')} };
if (typeof module === 'object' && module && module.exports) module.exports = ssehub;
else root.ssehub = ssehub;
})(typeof globalThis !== 'undefined' ? globalThis : this);
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = build();
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (current !== text) {
      console.error('dist/ssehub.js is out of date: run `npm run build` in clients/js');
      process.exit(1);
    }
  } else {
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    fs.writeFileSync(OUT, text);
  }
}
