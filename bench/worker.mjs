// Benchmarks the registry Worker under a local `wrangler dev --local` (workerd + on-disk KV)
// with autocannon, and writes the "## Worker (local wrangler dev)" section of bench/RESULTS.md
// (only that section; the others belong to other benches).
//
//   bash scripts/build-worker.sh && node bench/worker.mjs
//   BENCH_SECONDS=5 BENCH_CONNECTIONS=10 node bench/worker.mjs   # shorter / different load
//
// Scenarios: a lookup of a service with 100 instances, a resolve of 3 dependencies (each with
// the isolate cache warm and with `Cache-Control: no-cache`, i.e. real KV gets of snapshots), a
// consistent lookup (the service's Durable Object), a renewal (PUT of an existing instance into
// its object) next to one plain KV put (the heartbeat of the KV-only design, through the
// bench-only route that VASCO_BENCH=1 enables), renewals over a WebSocket lease, and the
// wake-up latency of a blocking query and of a change feed. KV ops per request are read from
// the x-vasco-kv-ops header of a sample request. Local KV is SQLite on disk, not Cloudflare's
// network, so absolute numbers say what the Worker costs, not what production latency is.
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import autocannon from 'autocannon';
import WebSocket from 'ws';

import { ROOT, startWrangler } from '../tests/support/wrangler.mjs';
import { writeSection } from './results.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const CACHE_MS = 1_000;

function run(opts) {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: SECONDS, ...opts }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
}

async function sampleOps(server, path, init) {
  const res = await server.fetch(path, init);
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`${init?.method ?? 'GET'} ${path}: ${res.status}`);
  return Number(res.headers.get('x-vasco-kv-ops'));
}

const loadAtStart = loadavg();

async function main() {
  const server = await startWrangler({ cacheMs: CACHE_MS, vars: { VASCO_BENCH: '1' } });
  const rows = [];
  const extra = [];
  try {
    const put = async (name, version, id, url) => {
      const res = await server.fetch(`/v1/services/${name}/${version}/instances/${id}`, {
        method: 'PUT',
        headers: server.auth({ 'content-type': 'application/json' }),
        body: JSON.stringify({ url, ttl: 3600, tags: ['bench'], zone: 'local' }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`register ${name}: ${res.status}`);
    };
    for (let i = 0; i < 100; i++) await put('bench-api', '1.0.0', `i${i}`, `10.0.${i >> 8}.${i & 255}:3000`);
    for (const dep of ['dep-a', 'dep-b', 'dep-c']) {
      for (let i = 0; i < 5; i++) await put(dep, '2.0.0', `i${i}`, `10.1.0.${i}:4000`);
    }

    const resolveBody = JSON.stringify({ dependencies: { 'dep-a': '^2', 'dep-b': '2.0.0', 'dep-c': '*' } });
    const heartbeatBody = JSON.stringify({ url: '10.9.9.9:3000', ttl: 30 });
    const scenarios = [
      {
        name: 'baseline: GET /health (no KV)',
        opts: { url: `${server.url}/health` },
        ops: () => sampleOps(server, '/health'),
      },
      {
        name: 'lookup, 100 instances, cache warm',
        opts: { url: `${server.url}/v1/services/bench-api` },
        ops: () => sampleOps(server, '/v1/services/bench-api'),
      },
      {
        name: 'lookup, 100 instances, no-cache (KV get)',
        opts: { url: `${server.url}/v1/services/bench-api`, headers: { 'cache-control': 'no-cache' } },
        ops: () => sampleOps(server, '/v1/services/bench-api', { headers: { 'cache-control': 'no-cache' } }),
      },
      {
        name: 'resolve 3 dependencies, cache warm',
        opts: {
          url: `${server.url}/v1/resolve`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: resolveBody,
        },
        ops: () => sampleOps(server, '/v1/resolve', { method: 'POST', body: resolveBody }),
      },
      {
        name: 'resolve 3 dependencies, no-cache (KV gets)',
        opts: {
          url: `${server.url}/v1/resolve`,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'cache-control': 'no-cache' },
          body: resolveBody,
        },
        ops: () =>
          sampleOps(server, '/v1/resolve', { method: 'POST', body: resolveBody, headers: { 'cache-control': 'no-cache' } }),
      },
      {
        name: 'consistent lookup, 100 instances (the object)',
        opts: { url: `${server.url}/v1/services/bench-api?consistent` },
        ops: () => sampleOps(server, '/v1/services/bench-api?consistent'),
      },
      {
        name: 'one plain KV put (the KV-only design\'s heartbeat)',
        opts: { url: `${server.url}/_bench/kv-put`, method: 'PUT' },
        ops: () => sampleOps(server, '/_bench/kv-put', { method: 'PUT' }),
      },
      {
        name: 'renewal (PUT of an existing instance, into its object)',
        opts: {
          url: `${server.url}/v1/services/bench-beat/1.0.0/instances/b1`,
          method: 'PUT',
          headers: server.auth({ 'content-type': 'application/json' }),
          body: heartbeatBody,
        },
        ops: () =>
          sampleOps(server, '/v1/services/bench-beat/1.0.0/instances/b1', {
            method: 'PUT',
            headers: server.auth({ 'content-type': 'application/json' }),
            body: heartbeatBody,
          }),
      },
    ];

    for (const scenario of scenarios) {
      // Warm up (and fill the isolate cache for the cached scenarios), then sample the ops.
      await scenario.ops();
      const ops = await scenario.ops();
      process.stderr.write(`bench: ${scenario.name} ...\n`);
      const result = await run(scenario.opts);
      const bad = result.errors + result.timeouts + result.non2xx;
      rows.push({
        name: scenario.name,
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        ops,
        total: result.requests.total,
        bad,
      });
      process.stderr.write(
        `bench:   ${result.requests.average} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, kv ops ${ops}, errors ${bad}\n`,
      );
    }
    extra.push(...(await latencies(server)));
  } finally {
    await server.stop();
  }

  const kvPut = rows.find((r) => r.name.startsWith('one plain KV put'));
  const renewal = rows.find((r) => r.name.startsWith('renewal'));
  const wasm = await readFile(join(ROOT, 'build', 'index_bg.wasm'));
  const js = await readFile(join(ROOT, 'build', 'index.js'));
  const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', 'wrangler', 'package.json'), 'utf8'));
  const kib = (n) => (n / 1024).toFixed(1);
  const date = new Date().toISOString().slice(0, 10);
  const load = loadAtStart.map((l) => l.toFixed(2)).join(', ');

  const lines = [
    '## Worker (local wrangler dev)',
    '',
    `Made by \`bash scripts/build-worker.sh && node bench/worker.mjs\` on ${date}: autocannon, ${CONNECTIONS} connections, ` +
      `${SECONDS} s per row, against \`wrangler dev --local\` (wrangler ${pkg.version}, workerd, KV in local SQLite) ` +
      `on the same machine (${availableParallelism()} cores, ${cpus()[0]?.model?.trim() ?? 'unknown CPU'}, Node ${process.version}; ` +
      `load average ${load} at the start: the machine is shared, so expect noise). ` +
      `The load generator and the Worker share the cores, and local KV is not Cloudflare's network: read these as the ` +
      `Worker's own cost, not production latency. Isolate cache lifetime ${CACHE_MS} ms; "no-cache" rows send ` +
      '`Cache-Control: no-cache`, so every request reads KV. The baseline row is the floor that ' +
      '`wrangler dev` itself (its local proxy in front of workerd) puts under every route.',
    '',
    '| scenario | req/s | p50 ms | p99 ms | KV ops / request | requests | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.ops} | ${r.total} | ${r.bad} |`),
    '',
    `Renewals into one object ran at ${(renewal.rps / kvPut.rps).toFixed(2)}x the requests per second of one plain KV put ` +
      `in the same run (${Math.round(renewal.rps)} vs ${Math.round(kvPut.rps)} req/s), with ${renewal.ops} KV operations per renewal ` +
      `instead of ${kvPut.ops}.`,
    '',
    '| measured in the same run | result |',
    '|---|---|',
    ...extra.map(([what, value]) => `| ${what} | ${value} |`),
    '',
    `Worker size: \`build/index_bg.wasm\` ${wasm.length} bytes (${kib(wasm.length)} KiB; ${kib(gzipSync(wasm).length)} KiB gzipped), ` +
      `target under 1 MiB: ${wasm.length < 1024 * 1024 ? 'met' : 'NOT met'}. JS glue \`build/index.js\` ${kib(js.length)} KiB.`,
    '',
  ];
  const section = lines.join('\n');

  await writeSection('## Worker (local wrangler dev)', section);
  process.stdout.write(`${section}\n`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stats = (xs) => `median ${median(xs)} ms, max ${Math.max(...xs)} ms (${xs.length} samples)`;

function openSocket(server, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL(path, server.url.replace('http', 'ws')), { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const nextMessage = (ws) =>
  new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));

/** Wake-up latencies (blocking query, change feed) and WebSocket lease renewals per second. */
async function latencies(server) {
  const SAMPLES = 20;
  const put = (id, url) =>
    server.fetch(`/v1/services/bench-wake/1.0.0/instances/${id}`, {
      method: 'PUT',
      headers: server.auth({ 'content-type': 'application/json' }),
      body: JSON.stringify({ url, ttl: 600 }),
    });
  const blocking = [];
  let res = await put('w', 'h:0');
  await res.arrayBuffer();
  for (let i = 1; i <= SAMPLES; i++) {
    const index = res.headers.get('x-vasco-index');
    const held = server.fetch(`/v1/services/bench-wake?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 200)); // let the query reach the object and hold
    const sent = performance.now();
    res = await put('w', `h:${i}`); // a changed url: an update, the index moves
    await res.arrayBuffer();
    const answer = await held;
    await answer.arrayBuffer();
    blocking.push(Math.round(performance.now() - sent));
    await new Promise((r) => setTimeout(r, 1_100)); // stay under one snapshot write a second
  }
  const feed = [];
  const ws = await openSocket(server, '/v1/services/bench-wake/watch');
  await nextMessage(ws); // the snapshot
  for (let i = 1; i <= SAMPLES; i++) {
    const event = nextMessage(ws);
    const sent = performance.now();
    await (await put('w', `f:${i}`)).arrayBuffer();
    await event;
    feed.push(Math.round(performance.now() - sent));
  }
  ws.close();
  const lease = await openSocket(server, '/v1/services/bench-lease/1.0.0/instances/l/lease', server.auth());
  lease.send(JSON.stringify({ type: 'register', url: 'h:1', ttl: 600 }));
  await nextMessage(lease);
  const start = performance.now();
  let renewals = 0;
  while (performance.now() - start < SECONDS * 1_000) {
    lease.send('{"type":"renew"}');
    await nextMessage(lease);
    renewals++;
  }
  const perSecond = Math.round(renewals / ((performance.now() - start) / 1_000));
  lease.close();
  return [
    ['blocking query woken by a change (PUT sent to held answer received)', stats(blocking)],
    ['change feed event after a change (PUT sent to WebSocket message received)', stats(feed)],
    ['WebSocket lease renewals, one socket, one at a time', `${perSecond} per second (${renewals} in ${SECONDS} s)`],
  ];
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
