// Prometheus discovers its scrape targets from the Worker with an unchanged `consul_sd_configs`
// entry: instances registered through the Consul API (PUT /v1/agent/service/register) become
// targets with the expected __meta_consul_* labels, their health label follows their TTL check,
// Prometheus scrapes them, and they leave when deregistered. Read through Prometheus's own
// GET /api/v1/targets.
//
// The Prometheus is Debian 11's package (2.24.1), which scripts/setup.sh unpacks into
// .tools/prometheus/: Debian 12's Prometheus 2.42 is built without Consul service discovery and
// refuses the config ("field consul_sd_configs not found in type config.ScrapeConfig").
// PROMETHEUS_PATH names another binary (one built with Consul service discovery); without any the
// test is skipped with a message saying how to get one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ROOT, freePort, startWrangler } from '../support/wrangler.mjs';
import { eventually, getJson, put } from './helpers.mjs';

const PROMETHEUS = process.env.PROMETHEUS_PATH || join(ROOT, '.tools', 'prometheus', 'usr', 'bin', 'prometheus');
const AVAILABLE = existsSync(PROMETHEUS);
const SKIP = AVAILABLE
  ? false
  : `no Prometheus at ${PROMETHEUS}: run bash scripts/setup.sh (it unpacks Debian 11's prometheus there), or set PROMETHEUS_PATH`;
const JOB = 'consul-services';
const SERVICE = 'web-app';

let server;
let workDir;
let prometheus;
let prometheusExit;
let prometheusOutput = '';
let prometheusUrl;
const exporters = [];

/** A tiny /metrics endpoint for Prometheus to scrape, standing in for a registered instance. */
async function startExporter() {
  const http = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end('# TYPE vasco_test_up gauge\nvasco_test_up 1\n');
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  exporters.push(http);
  return http.address().port;
}

before(async () => {
  if (!AVAILABLE) return;
  server = await startWrangler();
  workDir = await mkdtemp(join(tmpdir(), 'vasco-prometheus-'));
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    `  - job_name: ${JOB}`,
    '    consul_sd_configs:',
    `      - server: 127.0.0.1:${server.port}`,
    '        datacenter: dc1',
    `        token: ${server.token}`,
    '        refresh_interval: 1s',
    '',
  ].join('\n');
  await writeFile(join(workDir, 'prometheus.yml'), config);
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(workDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(workDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk) => {
    prometheusOutput += chunk;
    if (prometheusOutput.length > 200_000) prometheusOutput = prometheusOutput.slice(-100_000);
  };
  prometheus.stdout.setEncoding('utf8').on('data', keep);
  prometheus.stderr.setEncoding('utf8').on('data', keep);
  prometheusExit = new Promise((resolve) => prometheus.on('exit', (code, signal) => resolve({ code, signal })));
  await eventually(
    async () => {
      if (prometheus.exitCode !== null) assert.fail(`prometheus exited ${prometheus.exitCode}:\n${prometheusOutput}`);
      try {
        return (await fetch(`${prometheusUrl}/-/ready`)).status === 200;
      } catch {
        return false;
      }
    },
    { deadlineMs: 30_000, what: 'prometheus /-/ready' },
  );
});

after(async () => {
  if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
    prometheus.kill('SIGTERM');
    let timer;
    const done = await Promise.race([
      prometheusExit,
      new Promise((r) => {
        timer = setTimeout(() => r(null), 10_000);
      }),
    ]);
    clearTimeout(timer);
    if (!done) {
      prometheus.kill('SIGKILL');
      await prometheusExit;
    }
  }
  for (const http of exporters) http.close();
  await server?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Prometheus's active targets of the job, keyed by __meta_consul_service_id. */
async function targets() {
  const out = await getJson(prometheusUrl, '/api/v1/targets?state=active');
  assert.equal(out.status, 200, JSON.stringify(out.body));
  const byId = {};
  for (const t of out.body.data.activeTargets) {
    if (t.scrapePool !== JOB) continue;
    byId[t.discoveredLabels.__meta_consul_service_id] = t;
  }
  return byId;
}

const consul = (path, body) => put(server.url, path, { headers: { 'x-consul-token': server.token }, body });

async function until(what, check, deadlineMs = 60_000) {
  let last;
  try {
    return await eventually(
      async () => {
        last = await targets();
        return check(last);
      },
      { deadlineMs, everyMs: 500, what },
    );
  } catch (err) {
    err.message += `\nlast targets: ${JSON.stringify(last, null, 1)}\nprometheus log:\n${prometheusOutput.slice(-6_000)}`;
    throw err;
  }
}

test('Prometheus consul_sd_configs finds, labels, scrapes and drops instances', { skip: SKIP, timeout: 240_000 }, async () => {
  const port1 = await startExporter();
  const port2 = await startExporter();
  const instances = [
    { ID: 'web-1', Port: port1, Tags: ['a', 'b'], Meta: { version: '2.1.0', team: 'core' } },
    { ID: 'web-2', Port: port2, Tags: ['b'], Meta: { version: '2.2.0', team: 'edge' } },
  ];
  for (const inst of instances) {
    const reg = await consul('/v1/agent/service/register', {
      Name: SERVICE,
      Address: '127.0.0.1',
      ...inst,
      Check: { TTL: '60s', DeregisterCriticalServiceAfter: '10m' },
    });
    assert.equal(reg.status, 200, `register ${inst.ID}: ${reg.status} ${reg.body}`);
    const pass = await consul(`/v1/agent/check/pass/service:${inst.ID}`);
    assert.equal(pass.status, 200, `pass ${inst.ID}: ${pass.status} ${pass.body}`);
  }

  const found = await until('both instances become targets', (t) => t['web-1'] && t['web-2'] && t);
  for (const inst of instances) {
    const labels = found[inst.ID].discoveredLabels;
    const expected = {
      __address__: `127.0.0.1:${inst.Port}`,
      __meta_consul_service: SERVICE,
      __meta_consul_service_id: inst.ID,
      __meta_consul_service_address: '127.0.0.1',
      __meta_consul_service_port: String(inst.Port),
      __meta_consul_tags: `,${inst.Tags.join(',')},`,
      __meta_consul_service_metadata_version: inst.Meta.version,
      __meta_consul_service_metadata_team: inst.Meta.team,
      __meta_consul_health: 'passing',
      __meta_consul_dc: 'dc1',
    };
    for (const [key, value] of Object.entries(expected)) {
      assert.equal(labels[key], value, `${inst.ID} ${key}: ${JSON.stringify(labels)}`);
    }
    assert.ok(labels.__meta_consul_node, `${inst.ID} has a node label: ${JSON.stringify(labels)}`);
  }

  // The discovered address is the instance: Prometheus scrapes it.
  await until('both targets are scraped (up)', (t) => t['web-1']?.health === 'up' && t['web-2']?.health === 'up');

  // A failed check shows in the health label.
  const fail = await consul('/v1/agent/check/fail/service:web-2');
  assert.equal(fail.status, 200, `fail web-2: ${fail.status} ${fail.body}`);
  await until('web-2 is labelled critical', (t) => t['web-2']?.discoveredLabels.__meta_consul_health === 'critical');

  // Deregistered instances leave; the last one leaving empties the job.
  const dereg2 = await consul('/v1/agent/service/deregister/web-2');
  assert.equal(dereg2.status, 200, `deregister web-2: ${dereg2.status} ${dereg2.body}`);
  await until('web-2 leaves', (t) => t['web-1'] && !t['web-2']);
  const dereg1 = await consul('/v1/agent/service/deregister/web-1');
  assert.equal(dereg1.status, 200, `deregister web-1: ${dereg1.status} ${dereg1.body}`);
  await until('web-1 leaves', (t) => Object.keys(t).length === 0);
});
