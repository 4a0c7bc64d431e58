#!/usr/bin/env node
// Benchmarks of the npm package `vasco` in Node, written to the "## npm package (Node)" section
// of bench/RESULTS.md (only that section is replaced).
//
//   bash scripts/build-wasm.sh && bash scripts/build-worker.sh && node bench/npm.mjs
//
// 1. A pick from the client's cache through the package's public API (`await client.pick(...)`),
//    at N = 10 / 1,000 / 100,000 instances, served by a stub registry in this process (the cache
//    is what is measured: it is fetched once).
// 2. A consistent-hash pick against the npm `hashring` package, side by side in this process:
//    the package's `Selector` (maglev, synchronous) and `client.pick` with a key (async, through
//    the cache) against `ring.get(key)`, on random string keys (hashring's LRU misses) and on
//    repeated ones (a pool of 1,000 hot keys: both sides answer from their memo of hot keys).
// 3. findDependencies of 3 dependencies against a real local Worker (`wrangler dev`): registry
//    round trips (counted at `fetch`) and milliseconds, cold (a new client) and warm (cached).
// 4. The packed tarball's size (`npm pack --dry-run`).
// 5. A new question to the bounded answer cache, with room and full (evicting), per cacheSize.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

import { ROOT, startWrangler } from '../tests/support/wrangler.mjs';
import { RESULTS, writeSection } from './results.mjs';

const require = createRequire(import.meta.url);
const PKG = join(ROOT, 'crates', 'vasco-wasm', 'pkg');
const vasco = require(join(PKG, 'index.cjs'));
const HashRing = require('hashring');
const run = promisify(execFile);

const QUICK = process.argv.includes('--quick');
/** The 1-minute load average when the run started. */
const LOAD_AT_START = loadavg()[0];
const ROUNDS = QUICK ? 3 : 7;
const log = (...args) => console.error('bench:', ...args);

// --- measurement --------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** ns per call of a synchronous `fn(i)`, median of ROUNDS rounds of `iterations`. */
function timeSync(fn, iterations) {
  for (let i = 0; i < Math.min(iterations, 10_000); i++) fn(i); // warm-up
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i);
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  return median(rounds);
}

/** ns per awaited call of an async `fn(i)`, median of ROUNDS rounds of `iterations`. */
async function timeAsync(fn, iterations) {
  for (let i = 0; i < Math.min(iterations, 10_000); i++) await fn(i);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn(i);
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  return median(rounds);
}

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

// --- 1. picks from the cache ----------------------------------------------------------------

function instancesJson(name, n) {
  const now = Date.now();
  const list = [];
  for (let i = 0; i < n; i++) {
    list.push({
      service: name, version: '1.0.0', id: `i${i}`, url: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
      tags: [], meta: {}, weight: 1 + (i % 3), zone: null,
      registered_at: now, expires_at: now + 3_600_000, ttl_ms: 3_600_000,
    });
  }
  return JSON.stringify({ service: name, instances: list });
}

/** A stub registry serving GET /v1/services/{name} from prepared bodies. */
async function stubRegistry(bodies) {
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname.split('/')[3] ?? '');
    const body = bodies.get(name);
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(body ?? '{"error":{"code":"not_found","message":"no"}}');
  });
  // Keep idle connections longer than a bench phase: fetch reuses them, and one closed by the
  // server while idle fails the next request with ECONNRESET.
  server.keepAliveTimeout = 600_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

const SIZES = [10, 1_000, 100_000];
/** Answer-cache sizes of the cache benchmark (the default, and four times it). */
const CACHE_SIZES = [1_024, 4_096];
const PICK_STRATEGIES = ['round-robin', 'weighted', 'random', 'least-request', 'maglev'];

async function benchPicks() {
  const bodies = new Map(SIZES.map((n) => [`svc-${n}`, instancesJson(`svc-${n}`, n)]));
  const stub = await stubRegistry(bodies);
  const client = vasco.connect({ url: stub.url, cacheTtl: 3_600_000, handleSignals: false });
  const keys = Array.from({ length: 65_536 }, () => randomBytes(8).toString('hex'));
  const rows = [];
  for (const strategy of PICK_STRATEGIES) {
    const row = { strategy, ns: [] };
    for (const n of SIZES) {
      const name = `svc-${n}`;
      const options = { strategy };
      await client.pick(name, options); // fetch once, build the selector
      const iterations = QUICK ? 50_000 : 300_000;
      let ns;
      if (strategy === 'maglev') {
        ns = await timeAsync((i) => client.pick(name, { strategy, key: keys[i & 65_535] }), iterations);
      } else if (strategy === 'least-request') {
        // A pick starts a request; reporting its outcome ends it (as an app would).
        ns = await timeAsync(async () => {
          const instance = await client.pick(name, options);
          client.reportSuccess(name, instance.url);
        }, iterations);
      } else {
        ns = await timeAsync(() => client.pick(name, options), iterations);
      }
      log(`pick ${strategy} N=${n}: ${ns.toFixed(0)} ns`);
      row.ns.push(ns);
    }
    rows.push(row);
  }
  await client.close();
  await stub.close();
  return rows;
}

// --- 2. consistent hashing vs hashring ------------------------------------------------------

const RING_SIZES = [10, 100, 1_000];
/** The pool of repeated keys: within both hashring's LRU (5,000) and the package's memo. */
const HOT_KEYS = 1_000;
/** ns of `await` on an already resolved value: the floor of any async pick. */
async function awaitFloor() {
  const value = {};
  return timeAsync(() => Promise.resolve(value), QUICK ? 100_000 : 500_000);
}

async function benchHashring() {
  const keys = Array.from({ length: 100_000 }, () => randomBytes(12).toString('base64url'));
  const mask = keys.length;
  const hot = keys.slice(0, HOT_KEYS);
  const rows = [];
  for (const n of RING_SIZES) {
    const servers = Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}:11211`);
    const ring = new HashRing(servers);
    const selector = new vasco.Selector('maglev', servers, { seed: 1 });
    const name = `ring-${n}`;
    const body = JSON.stringify({
      service: name,
      instances: servers.map((url, i) => ({
        service: name, version: '1.0.0', id: `s${i}`, url, tags: [], meta: {}, weight: 1, zone: null,
        registered_at: 0, expires_at: Date.now() + 3_600_000, ttl_ms: 3_600_000,
      })),
    });
    const stub = await stubRegistry(new Map([[name, body]]));
    const client = vasco.connect({ url: stub.url, cacheTtl: 3_600_000, handleSignals: false });
    await client.pick(name, { strategy: 'maglev', key: 'warm' });

    const iterations = QUICK ? 100_000 : 500_000;
    // Interleaved rounds, so both see the same machine state.
    const ours = [];
    const theirs = [];
    const client_ = [];
    for (let r = 0; r < 3; r++) {
      theirs.push(timeSync((i) => ring.get(keys[i % mask]), iterations));
      ours.push(timeSync((i) => selector.pick(keys[i % mask]), iterations));
      client_.push(await timeAsync((i) => client.pick(name, { strategy: 'maglev', key: keys[i % mask] }), iterations / 5));
    }
    // Repeated keys, after one warm-up pass over them (timeSync's own warm-up covers it).
    const theirsHot = [];
    const oursHot = [];
    const clientHot = [];
    for (let r = 0; r < 3; r++) {
      theirsHot.push(timeSync((i) => ring.get(hot[i % HOT_KEYS]), iterations));
      oursHot.push(timeSync((i) => selector.pick(hot[i % HOT_KEYS]), iterations));
      clientHot.push(await timeAsync((i) => client.pick(name, { strategy: 'maglev', key: hot[i % HOT_KEYS] }), iterations / 5));
    }
    const row = {
      n,
      hashring: median(theirs),
      selector: median(ours),
      client: median(client_),
      hashringHot: median(theirsHot),
      selectorHot: median(oursHot),
      clientHot: median(clientHot),
    };
    log(`hashring N=${n}: ${row.hashring.toFixed(0)} ns; Selector ${row.selector.toFixed(0)} ns; client.pick ${row.client.toFixed(0)} ns`);
    log(`hashring N=${n}, repeated keys: ${row.hashringHot.toFixed(0)} ns; Selector ${row.selectorHot.toFixed(0)} ns; client.pick ${row.clientHot.toFixed(0)} ns`);
    rows.push(row);
    selector.free();
    await client.close();
    await stub.close();
  }
  return rows;
}

// --- 3. findDependencies against the local Worker -------------------------------------------

async function benchFindDependencies() {
  const server = await startWrangler();
  try {
    const admin = vasco.connect({ url: server.url, token: server.token, handleSignals: false });
    const deps = { api: '^2', auth: '1.0.0', db: '>=3 <4' };
    // Long leases: a heartbeat lost to a busy machine must not take a dependency away mid-run.
    const ttl = 120;
    await admin.register({ name: 'api', version: '2.1.0', url: '127.0.0.1:7001', ttl });
    await admin.register({ name: 'api', version: '2.0.0', url: '127.0.0.1:7002', ttl });
    await admin.register({ name: 'auth', version: '1.0.0', url: '127.0.0.1:7003', ttl });
    await admin.register({ name: 'db', version: '3.2.0', url: '127.0.0.1:7004', ttl });

    // Count registry round trips where the package makes them: the global fetch.
    const realFetch = globalThis.fetch;
    let trips = 0;
    globalThis.fetch = (...args) => {
      trips += 1;
      return realFetch(...args);
    };
    const cold = [];
    const coldTrips = [];
    const samples = QUICK ? 20 : 60;
    for (let i = 0; i < samples; i++) {
      const client = vasco.connect({ url: server.url, handleSignals: false });
      const before = trips;
      const start = performance.now();
      const urls = await client.findDependencies(deps);
      cold.push(performance.now() - start);
      coldTrips.push(trips - before);
      if (Object.keys(urls).length !== 3) throw new Error(`unexpected ${JSON.stringify(urls)}`);
      await client.close();
    }
    // 50 callers at once on a new client: one question in flight, so one round trip.
    const crowd = vasco.connect({ url: server.url, handleSignals: false });
    const crowdBefore = trips;
    const crowdStart = performance.now();
    await Promise.all(Array.from({ length: 50 }, () => crowd.findDependencies(deps)));
    const crowdMs = performance.now() - crowdStart;
    const crowdTrips = trips - crowdBefore;
    await crowd.close();
    const client = vasco.connect({ url: server.url, handleSignals: false });
    await client.findDependencies(deps);
    const before = trips;
    const warmCalls = QUICK ? 2_000 : 20_000;
    const warmNs = await timeAsync(() => client.findDependencies(deps), warmCalls);
    const warmTrips = trips - before;
    globalThis.fetch = realFetch;
    await client.close();
    await admin.close();
    const sorted = [...cold].sort((a, b) => a - b);
    const result = {
      coldMs: median(cold),
      coldP90: sorted[Math.floor(sorted.length * 0.9)],
      coldTrips: median(coldTrips),
      crowdTrips,
      crowdMs,
      warmUs: warmNs / 1000,
      warmTrips,
      warmCalls: warmCalls * (ROUNDS + 1),
      samples,
    };
    log(`findDependencies: cold ${result.coldMs.toFixed(1)} ms, ${result.coldTrips} trip(s); warm ${result.warmUs.toFixed(1)} µs, ${warmTrips} trips`);
    return result;
  } finally {
    await server.stop();
  }
}

// --- 5. the bounded answer cache ---------------------------------------------------------------

/**
 * The cost of a new question to the answer cache (`await client.instances(name, range)` with a
 * range never asked before, `memory:` registry, 64 services): while the cache has room, and once
 * it is full (each new question then evicts the least recently used one), per cache size.
 */
async function benchCache() {
  const rows = [];
  for (const cacheSize of CACHE_SIZES) {
    const client = vasco.connect({ url: 'memory:', handleSignals: false, cacheSize });
    for (let s = 0; s < 64; s += 1) await client.register({ name: `cache-${s}`, version: '1.0.0', url: `10.9.0.${s}:80` });
    let next = 0;
    const ask = () => {
      const i = next++;
      return client.instances(`cache-${i % 64}`, `>=0.0.${i} || 1.0.0`);
    };
    const time = async (count) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i += 1) await ask();
      return Number(process.hrtime.bigint() - start) / count / 1000;
    };
    const filling = await time(cacheSize);
    const full = await time(QUICK ? 500 : 2_000);
    rows.push({ cacheSize, filling, full, held: client.cachedQuestions });
    await client.close({ deregister: false });
  }
  return rows;
}

// --- 4. size --------------------------------------------------------------------------------

async function benchSize() {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: PKG });
  const [info] = JSON.parse(stdout);
  const wasm = await readFile(join(PKG, 'wasm', 'vasco_wasm_bg.wasm'));
  const { dependencies = {} } = JSON.parse(await readFile(join(PKG, 'package.json'), 'utf8'));
  return {
    dependencies: Object.keys(dependencies),
    packed: info.size,
    unpacked: info.unpackedSize,
    files: info.entryCount,
    wasm: wasm.length,
    wasmGzip: gzipSync(wasm, { level: 9 }).length,
  };
}

// --- report ---------------------------------------------------------------------------------

function section({ picks, rings, floor, find, cache, size }) {
  const kib = (b) => (b / 1024).toFixed(1);
  const date = new Date().toISOString().slice(0, 10);
  const lines = [];
  lines.push('## npm package (Node)');
  lines.push('');
  lines.push(
    `Made by \`bash scripts/build-wasm.sh && node bench/npm.mjs\` on ${date}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, load average ${LOAD_AT_START.toFixed(1)} at the start (other work on the machine inflates every absolute number; the side-by-side comparisons are interleaved, so their ratios hold better). ` +
      `Every number is a median of ${ROUNDS} rounds in one Node process; picks go through the package's public API and include the wasm boundary (string keys in, the cached instance object out).`,
  );
  lines.push('');
  lines.push('### A pick from the client cache (`await client.pick(name, {strategy})`), ns');
  lines.push('');
  lines.push('The instance list is fetched once from a stub registry in the same process (cache lifetime 1 h), so this is the cost of the cached path: the slot lookup, the selector pick and the Promise. `maglev` picks with a random key from a pool of 65,536; `least-request` also reports each call\'s success (ending its in-flight count).');
  lines.push('');
  lines.push(`| strategy | ${SIZES.map((n) => `N = ${fmt(n)}`).join(' | ')} |`);
  lines.push(`|---|${SIZES.map(() => '---:').join('|')}|`);
  for (const row of picks) lines.push(`| ${row.strategy} | ${row.ns.map((ns) => fmt(ns)).join(' | ')} |`);
  lines.push('');
  lines.push('### Consistent hashing against the npm `hashring` package, ns per pick');
  lines.push('');
  lines.push('The same servers, measured interleaved in one process. `Selector` is the package\'s synchronous `new Selector(\'maglev\', servers).pick(key)`; `client.pick` is the async client API with a key through the cache (`await client.pick(name, {strategy: \'maglev\', key})`). Both memoize the candidate of recently picked keys on the JavaScript side (passing a string into wasm costs more than the pick itself); the client\'s memo holds only while its cached answer, its leases and its ejections stay as they are. Targets, for `Selector.pick`, the like of `ring.get`: at least 5× faster than `hashring` for random keys, and no slower for repeated keys.');
  lines.push('');
  lines.push('Random 16-character string keys (a pool of 100,000, so `hashring`\'s LRU of 5,000 keys misses):');
  lines.push('');
  lines.push('| servers | hashring `get` | vasco `Selector.pick` | speed-up | vasco `client.pick` | speed-up | target (≥ 5×) |');
  lines.push('|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rings) {
    const s1 = r.hashring / r.selector;
    const s2 = r.hashring / r.client;
    lines.push(`| ${fmt(r.n)} | ${fmt(r.hashring)} | ${fmt(r.selector)} | ${s1.toFixed(1)}× | ${fmt(r.client)} | ${s2.toFixed(1)}× | ${s1 >= 5 ? 'met' : 'missed'} |`);
  }
  lines.push('');
  lines.push(`Repeated keys (a pool of ${fmt(HOT_KEYS)}, warm in both memos). An \`await\` of an already resolved value alone costs ${fmt(floor)} ns here, the floor of any async pick:`);
  lines.push('');
  lines.push('| servers | hashring `get` | vasco `Selector.pick` | speed-up | vasco `client.pick` | speed-up | target (≥ 1×) |');
  lines.push('|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rings) {
    const s1 = r.hashringHot / r.selectorHot;
    const s2 = r.hashringHot / r.clientHot;
    lines.push(`| ${fmt(r.n)} | ${fmt(r.hashringHot)} | ${fmt(r.selectorHot)} | ${s1.toFixed(1)}× | ${fmt(r.clientHot)} | ${s2.toFixed(1)}× | ${s1 >= 1 ? 'met' : 'missed'} |`);
  }
  lines.push('');
  lines.push('### findDependencies of 3 dependencies against the local Worker');
  lines.push('');
  lines.push(`\`{api: '^2', auth: '1.0.0', db: '>=3 <4'}\` against \`wrangler dev --local\` on this machine (local KV, isolate cache off). Round trips are counted at \`fetch\`. Cold: a new client each time (${find.samples} samples); warm: the same client, answered from its cache (default lifetime 5 s, refreshed in the background after 3 s, so a long warm run makes a few refresh trips that no caller waits for).`);
  lines.push('');
  lines.push('| | registry round trips | time |');
  lines.push('|---|---:|---:|');
  lines.push(`| cold (new client) | ${find.coldTrips} | ${find.coldMs.toFixed(1)} ms (p90 ${find.coldP90.toFixed(1)} ms) |`);
  lines.push(`| cold, 50 concurrent callers (new client) | ${find.crowdTrips} | ${find.crowdMs.toFixed(1)} ms for all 50 |`);
  lines.push(`| warm (cached) | ${find.warmTrips} in ${fmt(find.warmCalls)} calls (background refreshes) | ${find.warmUs.toFixed(1)} µs |`);
  lines.push('');
  lines.push('### A new question to the bounded answer cache (`cacheSize`), µs');
  lines.push('');
  lines.push('`await client.instances(name, range)` with a range never asked before, against the in-process `memory:` registry (64 services, questions spread over them): while the cache has room, and once it is full, when each new question evicts the least recently used slot (found by a scan of the slots). The difference is the eviction.');
  lines.push('');
  lines.push('| cacheSize | with room | full (evicting) | ratio | questions held after |');
  lines.push('|---:|---:|---:|---:|---:|');
  for (const r of cache) {
    lines.push(`| ${fmt(r.cacheSize)} | ${r.filling.toFixed(1)} | ${r.full.toFixed(1)} | ${(r.full / r.filling).toFixed(1)}× | ${fmt(r.held)} |`);
  }
  lines.push('');
  lines.push('### Package size');
  lines.push('');
  lines.push(`\`npm pack\`: ${fmt(size.packed)} bytes packed (${kib(size.packed)} KiB; target under 300 KiB: ${size.packed < 300 * 1024 ? 'met' : 'missed'}), ${kib(size.unpacked)} KiB unpacked, ${size.files} files. The wasm module is ${kib(size.wasm)} KiB (${kib(size.wasmGzip)} KiB gzipped), after \`wasm-opt -Oz\`; dependencies (${size.dependencies.map((d) => `\`${d}\``).join(', ')}) not counted.`);
  lines.push('');
  return lines.join('\n');
}

const picks = await benchPicks();
const rings = await benchHashring();
const floor = await awaitFloor();
const find = await benchFindDependencies();
const cache = await benchCache();
const size = await benchSize();
const text = section({ picks, rings, floor, find, cache, size });
console.log(text);
if (!QUICK) await writeSection('## npm package (Node)', text);
await stat(RESULTS);
