// Shutdown: how long after a service holding a WebSocket lease is killed a consumer using the
// npm client (with the change feed) stops picking it. Ten trials each of SIGKILL and SIGTERM
// against a local `wrangler dev`, the service's aliveDuration 10 s (as in the original Vasco's
// measurement: median 4.9 s, max 9.6 s). Writes the "## Shutdown (npm client)" section of
// bench/RESULTS.md (only that section is replaced).
//
//   node bench/shutdown.mjs            10 trials each, writes RESULTS.md
//   node bench/shutdown.mjs --quick    3 trials each, prints only
//
// On SIGTERM the package drains first: it sets the instance to maintenance (consumers stop
// picking it), keeps renewing for VASCO_DRAIN_MS (the package's default, 3000 ms, unless the
// environment says otherwise; the services get exactly this value), then deregisters and exits.
// The report states the drain used, and how long the process took to exit.
//
// Needs the built Worker (scripts/build-worker.sh) and package (scripts/build-wasm.sh).
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

import { startWrangler } from '../tests/support/wrangler.mjs';
import { loadVasco, startChild } from '../tests/npm/helpers.mjs';
import { writeSection } from './results.mjs';

const QUICK = process.argv.includes('--quick');
const TRIALS = QUICK ? 3 : 10;
const TTL_S = 10;
/** The services' drain on SIGTERM (ms): VASCO_DRAIN_MS if set, else the package's default. */
const DRAIN_MS = process.env.VASCO_DRAIN_MS === undefined ? 3000 : Number(process.env.VASCO_DRAIN_MS);
/** A trial that has not seen the removal after this long counts as a failure. */
const TRIAL_DEADLINE_MS = 3 * TTL_S * 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const vasco = await loadVasco();
const server = await startWrangler();
const consumer = vasco.connect({ url: server.url, token: server.token });
const env = { VASCO_URL: server.url, VASCO_TOKEN: server.token, VASCO_DRAIN_MS: String(DRAIN_MS) };

async function picks(name, url) {
  try {
    return (await consumer.pick(name)).url === url;
  } catch (error) {
    if (error.code === 'no_url') return false;
    throw error;
  }
}

/** Polls (every ms or so) until `check` holds; returns the ms it took, or null at the deadline. */
async function until(check, deadlineMs) {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > deadlineMs) return null;
    await sleep(1);
  }
}

async function trial(signal, n) {
  const name = `shutdown-${signal.toLowerCase()}-${process.pid}-${n}`;
  const child = startChild('service.cjs', { ...env, SVC_NAME: name, SVC_TTL: String(TTL_S) });
  const { registered: url, socket } = await child.message('registered');
  if (!socket) throw new Error('the lease is not held on a WebSocket');
  if ((await until(() => picks(name, url), 10_000)) === null) throw new Error(`${name} never picked`);
  const killed = performance.now();
  child.kill(signal);
  const gone = await until(async () => !(await picks(name, url)), TRIAL_DEADLINE_MS);
  const ms = gone === null ? null : performance.now() - killed;
  await child.exited;
  exits[signal].push(performance.now() - killed);
  return ms;
}

/** Per signal, how long each process took to exit after it (ms). */
const exits = { SIGKILL: [], SIGTERM: [] };

function stats(samples) {
  const ok = samples.filter((s) => s !== null).sort((a, b) => a - b);
  const median = ok.length % 2 ? ok[(ok.length - 1) / 2] : (ok[ok.length / 2 - 1] + ok[ok.length / 2]) / 2;
  return { n: samples.length, failed: samples.length - ok.length, median, max: ok.at(-1), min: ok[0] };
}

const results = {};
try {
  for (const signal of ['SIGKILL', 'SIGTERM']) {
    const samples = [];
    for (let n = 0; n < TRIALS; n += 1) samples.push(await trial(signal, n));
    results[signal] = { samples, ...stats(samples) };
    console.error(signal, samples.map((s) => (s === null ? 'timeout' : s.toFixed(0))).join(' '));
  }
} finally {
  await consumer.close();
  await server.stop();
}

const ms = (x) => (x === undefined || x === null ? 'n/a' : `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms`);
const lines = [
  '## Shutdown (npm client)',
  '',
  `\`node bench/shutdown.mjs\`: a service (tests/npm/fixtures/service.cjs, the original API, aliveDuration ${TTL_S} s) holds its lease on a WebSocket; a consumer (\`connect()\`, its cache kept by the service's change feed) picks it every millisecond or so. Time from the kill until the consumer's picks stop returning it, ${TRIALS} trials each, against a local \`wrangler dev\`. The services drain on SIGTERM with **VASCO_DRAIN_MS=${DRAIN_MS}** (${DRAIN_MS === 3000 ? "the package's default" : 'set for this run'}). Node ${process.version}, ${cpus().length} cores (load average ${loadavg()[0].toFixed(1)} at the end). Target: under 1 s for both; the original Vasco took a median of 4.9 s and a max of 9.6 s.`,
  '',
  '| signal | median | max | min | trials over the deadline | process exit, median |',
  '|---|---|---|---|---|---|',
];
for (const [signal, r] of Object.entries(results)) {
  lines.push(`| ${signal} | ${ms(r.median)} | ${ms(r.max)} | ${ms(r.min)} | ${r.failed} of ${r.n} | ${ms(stats(exits[signal]).median)} |`);
}
const met = Object.values(results).every((r) => r.failed === 0 && r.max < 1000);
lines.push('');
lines.push(`Under 1 s for both: ${met ? 'met' : 'missed'}. SIGKILL: the kernel closes the socket, the service's Durable Object deregisters the instance on the close and publishes the removal on the feed. SIGTERM: the package's signal handler drains: it sends \`{"type":"status","status":"maintenance","reason":"shutdown"}\` on the lease socket, the object publishes the instance as updated on the feed and the consumer's core stops picking it; the lease is renewed for the ${DRAIN_MS} ms drain (requests in flight finish), then \`{"type":"deregister"}\` removes it and the process exits by the signal (hence the exit time).`);
lines.push('');
const text = lines.join('\n');
console.log(text);

if (!QUICK) await writeSection('## Shutdown (npm client)', text);
