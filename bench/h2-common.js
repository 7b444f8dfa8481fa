// Helpers shared by the HTTP/2 benchmark scripts (h2-idle.js, h2-fanout.js): options, the
// hub process and its memory from /proc.
'use strict';

const fs = require('node:fs');
const { spawn } = require('node:child_process');
const readline = require('node:readline');

const args = process.argv.slice(2);

/** The value after `--name` on the command line, or `dflt`. */
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const flag = (name) => args.includes(`--${name}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** Starts `bin serve --listen 127.0.0.1:0 --memory --heartbeat 3600 ...extra` (under
 * `taskset -c cpu` when `cpu` is given) and resolves to { hub, url } once it listens. */
async function startHub(bin, extra = [], cpu = null) {
  const hubArgs = ['serve', '--listen', '127.0.0.1:0', '--memory', '--heartbeat', '3600', ...extra];
  const [cmd, cmdArgs] = cpu === null ? [bin, hubArgs] : ['taskset', ['-c', cpu, bin, ...hubArgs]];
  const hub = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SSEHUB_LOG: 'warn' } });
  const line = await new Promise((resolve) => readline.createInterface({ input: hub.stdout }).once('line', resolve));
  return { hub, url: /listening on (\S+)/.exec(line)[1] };
}

module.exports = { opt, flag, sleep, rssKiB, startHub };
