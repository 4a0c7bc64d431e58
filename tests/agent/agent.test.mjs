// `vasco agent` end to end: the real command next to a real `wrangler dev`, driven by real
// programs: the seed article's ConsulRegistry (npm `consul`) with an HTTP check, Node's own DNS
// resolver, `dig`, and the registry stopped and started again mid-test.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { startWrangler } from '../support/wrangler.mjs';
import { unique } from '../npm/helpers.mjs';
import { edgeInstances, startAgent, waitFor } from './helpers.mjs';

const require = createRequire(import.meta.url);
const Consul = require('consul');
const dnsPacket = require('dns-packet');
const run = promisify(execFile);

/** Whether Debian's `dig` (dnsutils) is installed. */
const HAS_DIG = (() => {
  try {
    execFileSync('dig', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The agent's lease for the services whose checks it runs (s): short, so lapses show quickly. */
const LEASE_S = 3;

let server;
let agent;
let persistDir;
let dataDir;
const cleanups = [];

before(async () => {
  persistDir = await mkdtemp(join(tmpdir(), 'vasco-agent-kv-'));
  dataDir = await mkdtemp(join(tmpdir(), 'vasco-agent-data-'));
  server = await startWrangler({ persistDir });
  agent = await startAgent(server, ['--lease-ttl', String(LEASE_S), '--advertise-addr', '127.0.0.1', '--data-dir', dataDir]);
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await agent?.stop('SIGKILL');
  await server?.stop();
  await rm(persistDir, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

/** A small service with a /health that can be made to fail. */
async function healthServer() {
  const state = { healthy: true };
  const srv = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(state.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(state.healthy ? 'ok' : 'database unreachable');
    } else {
      res.end('hello');
    }
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const close = () => new Promise((resolve) => srv.close(() => resolve()));
  cleanups.push(close);
  return { state, port: srv.address().port, close };
}

// The seed article's registry class, as written for Consul (CONSUL_HOST, CONSUL_PORT,
// SERVICE_NAME, SERVICE_HOST from the environment), with the check's timings passed in so the
// test can use short ones.
class ConsulRegistry {
  constructor() {
    this.consul = new Consul({
      host: process.env.CONSUL_HOST || 'localhost',
      port: process.env.CONSUL_PORT || 8500,
    });
    this.serviceId = `${process.env.SERVICE_NAME}-${process.pid}`;
  }

  async register(serviceName, port, healthCheckPath = '/health', timings = {}) {
    const host = process.env.SERVICE_HOST || 'localhost';
    await this.consul.agent.service.register({
      id: this.serviceId,
      name: serviceName,
      address: host,
      port,
      check: {
        http: `http://${host}:${port}${healthCheckPath}`,
        interval: timings.interval || '10s',
        timeout: timings.timeout || '5s',
        deregistercriticalserviceafter: timings.deregisterAfter || '1m',
      },
      tags: ['nodejs', 'microservice'],
    });
  }

  async deregister() {
    await this.consul.agent.service.deregister(this.serviceId);
  }

  async discover(serviceName) {
    const services = await this.consul.health.service({ service: serviceName, passing: true });
    return services.map((s) => ({ address: s.Service.Address, port: s.Service.Port }));
  }
}

function withEnv(vars) {
  const before = {};
  for (const [key, value] of Object.entries(vars)) {
    before[key] = process.env[key];
    process.env[key] = value;
  }
  return () => {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

/** PUT /v1/agent/service/register on the agent; resolves the response. */
function agentRegister(body) {
  return agent.fetch('/v1/agent/service/register', { method: 'PUT', body: JSON.stringify(body) });
}

test('ConsulRegistry with an HTTP check: passing, critical within an interval + 1 s, back, removed after DeregisterCriticalServiceAfter', async () => {
  const service = await healthServer();
  const name = unique('payment');
  const restore = withEnv({
    CONSUL_HOST: '127.0.0.1',
    CONSUL_PORT: String(agent.httpPort),
    SERVICE_NAME: name,
    SERVICE_HOST: '127.0.0.1',
  });
  const registry = new ConsulRegistry();
  await registry.register(name, service.port, '/health', { interval: '1s', timeout: '500ms', deregisterAfter: '4s' });
  restore();
  const resolver = agent.resolver();
  // A consumer watching through the agent (blocking queries on its copy).
  const watcher = new Consul({ host: '127.0.0.1', port: agent.httpPort });
  const watch = watcher.watch({ method: watcher.health.service, options: { service: name, passing: true } });
  const seen = [];
  watch.on('change', (entries) => seen.push(entries.map((e) => e.Service.Port)));
  watch.on('error', (error) => seen.push(`error: ${error.message}`));
  cleanups.push(() => watch.end());

  // Passing: through the agent's API, at the edge, and in DNS.
  assert.deepEqual(
    await waitFor(async () => {
      const found = await registry.discover(name);
      return found.length > 0 && found;
    }, { timeout: 10_000, message: 'the service to pass its check' }),
    [{ address: '127.0.0.1', port: service.port }],
  );
  const [listed] = await edgeInstances(server, name);
  assert.equal(listed.status, 'passing');
  assert.equal(listed.url, `127.0.0.1:${service.port}`);
  assert.equal(listed.id, registry.serviceId);
  assert.deepEqual(await resolver.resolve4(`${name}.service.consul`), ['127.0.0.1']);
  const checks = await (await agent.fetch('/v1/agent/checks')).json();
  assert.equal(checks[`service:${registry.serviceId}`].Status, 'passing');

  // /health fails: consumers stop receiving it within one check interval plus 1 s.
  service.state.healthy = false;
  await waitFor(async () => (await edgeInstances(server, name)).length === 0, {
    timeout: 2_000,
    interval: 20,
    message: 'the edge to stop listing the failing service',
  });
  await waitFor(
    () => resolver.resolve4(`${name}.service.consul`).then(() => false, (error) => error.code === 'ENOTFOUND'),
    { timeout: 1_000, message: 'DNS to stop answering it (NXDOMAIN)' },
  );
  assert.deepEqual(await registry.discover(name), []);
  await waitFor(() => seen.at(-1)?.length === 0, { message: `the watch to see it go (${JSON.stringify(seen)})` });
  assert.ok(seen.some((ports) => ports[0] === service.port), JSON.stringify(seen));
  assert.ok(!seen.some((entry) => typeof entry === 'string'), JSON.stringify(seen));
  const [critical] = await edgeInstances(server, name, '&all');
  assert.equal(critical.status, 'critical');
  assert.match(critical.reason, /503/);

  // It recovers.
  service.state.healthy = true;
  await waitFor(async () => (await registry.discover(name)).length === 1, { timeout: 3_000, message: 'the service to pass again' });
  assert.deepEqual(await resolver.resolve4(`${name}.service.consul`), ['127.0.0.1']);

  // Gone for DeregisterCriticalServiceAfter (4 s): removed from the agent and the registry.
  await service.close();
  await waitFor(
    async () => {
      const services = await (await agent.fetch('/v1/agent/services')).json();
      return !(registry.serviceId in services) && (await edgeInstances(server, name, '&all')).length === 0;
    },
    { timeout: 10_000, interval: 100, message: 'the dead service to be deregistered' },
  );
  await assert.rejects(registry.deregister(), (error) => error.response?.statusCode === 404, 'it is gone from the agent');
});

test('a TTL check through the agent: pass and fail reach the registry', async () => {
  const name = unique('ttl');
  const consul = new Consul({ host: '127.0.0.1', port: agent.httpPort });
  await consul.agent.service.register({ id: `${name}-1`, name, address: '127.0.0.1', port: 7001, check: { ttl: '10s' } });
  assert.equal((await edgeInstances(server, name, '&all'))[0].status, 'critical', "Consul's initial status");
  await consul.agent.check.pass({ id: `service:${name}-1`, note: 'fine' });
  await waitFor(async () => (await edgeInstances(server, name))[0]?.status === 'passing', { message: 'passing' });
  await consul.agent.check.fail(`service:${name}-1`);
  await waitFor(async () => (await edgeInstances(server, name)).length === 0, { message: 'critical' });
  assert.equal((await agent.fetch('/v1/agent/check/pass/nope', { method: 'PUT' })).status, 404);
  await consul.agent.service.deregister(`${name}-1`);
  assert.equal((await edgeInstances(server, name, '&all')).length, 0);
  // The agent runs HTTP checks itself: results sent for them are refused, as Consul refuses them.
  await consul.agent.service.register({ id: `${name}-2`, name, address: '127.0.0.1', port: 1, check: { http: 'http://127.0.0.1:1/', interval: '30s' } });
  const res = await agent.fetch(`/v1/agent/check/pass/service:${name}-2`, { method: 'PUT' });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /does not have associated TTL/);
  await consul.agent.service.deregister(`${name}-2`);
});

test('a TCP check: passing while the port accepts connections, critical when it stops', async () => {
  const name = unique('tcpsvc');
  const listener = createNetServer((socket) => socket.end());
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address();
  cleanups.push(() => new Promise((resolve) => listener.close(() => resolve())));
  const consul = new Consul({ host: '127.0.0.1', port: agent.httpPort });
  await consul.agent.service.register({
    id: `${name}-1`, name, address: '127.0.0.1', port,
    check: { tcp: `127.0.0.1:${port}`, interval: '1s', timeout: '500ms' },
  });
  await waitFor(async () => (await edgeInstances(server, name))[0]?.status === 'passing', { timeout: 5_000, message: 'passing' });
  await new Promise((resolve) => listener.close(() => resolve()));
  await waitFor(async () => (await edgeInstances(server, name)).length === 0, { timeout: 3_000, message: 'critical' });
  const [critical] = await edgeInstances(server, name, '&all');
  assert.equal(critical.status, 'critical');
  assert.match(critical.reason, /TCP connect 127\.0\.0\.1:\d+: ECONNREFUSED/);
  await consul.agent.service.deregister(`${name}-1`);
});

test('behind a proxy that refuses WebSockets: leases renew over HTTP, the copy follows blocking queries', async () => {
  // Plain HTTP is forwarded to the registry; every upgrade is refused with a 404.
  const proxy = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = {};
    for (const name of ['authorization', 'content-type', 'accept']) if (req.headers[name]) headers[name] = req.headers[name];
    try {
      const answer = await server.fetch(req.url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
      const out = {};
      for (const name of ['content-type', 'x-vasco-index', 'x-vasco-now']) if (answer.headers.get(name)) out[name] = answer.headers.get(name);
      res.writeHead(answer.status, out);
      res.end(Buffer.from(await answer.arrayBuffer()));
    } catch {
      res.writeHead(502);
      res.end();
    }
  });
  proxy.on('upgrade', (req, socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(() => resolve()); }));
  const proxied = await startAgent({ url: `http://127.0.0.1:${proxy.address().port}`, token: server.token }, ['--lease-ttl', '3']);
  cleanups.push(() => proxied.stop('SIGKILL'));

  const name = unique('proxied');
  const res = await proxied.fetch('/v1/agent/service/register', { method: 'PUT', body: JSON.stringify({ ID: `${name}-1`, Name: name, Address: '127.0.0.5', Port: 80 }) });
  assert.equal(res.status, 200, await res.text());
  const [first] = await edgeInstances(server, name);
  assert.equal(first.url, '127.0.0.5:80');
  // Renewed over HTTP: the lease moves on.
  await waitFor(async () => (await edgeInstances(server, name))[0]?.expires_at > first.expires_at, { timeout: 5_000, message: 'an HTTP renewal' });
  const resolver = proxied.resolver();
  assert.deepEqual(await resolver.resolve4(`${name}.service.consul`), ['127.0.0.5']);
  // A change at the registry reaches the copy through the held blocking query.
  const put = await server.fetch(`/v1/services/${name}/1.0.0/instances/native`, { method: 'PUT', headers: server.auth(), body: JSON.stringify({ url: '127.0.0.6:80', ttl: 60 }) });
  assert.equal(put.status, 200);
  await waitFor(async () => (await resolver.resolve4(`${name}.service.consul`)).length === 2, { message: 'the copy to follow the change' });
  const health = await proxied.fetch(`/v1/health/service/${name}`);
  assert.equal(health.headers.get('x-vasco-stale'), null);
  assert.equal((await health.json()).length, 2);
});

test('registrations the registry would refuse are refused by the agent with a 400 that says why', async () => {
  for (const [body, pattern] of [
    [{ Name: 'has space', Port: 1 }, /no Vasco equivalent/],
    [{ Name: 'g', Port: 1, Check: { GRPC: 'a:1', Interval: '1s' } }, /grpc checks are not supported/],
    [{ Name: 'h', Port: 1, Check: { HTTP: 'http://a/' } }, /Interval/],
  ]) {
    const res = await agentRegister(body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match(await res.text(), pattern);
  }
  assert.equal((await agent.fetch('/v1/agent/service/deregister/nope', { method: 'PUT' })).status, 404);
});

test("DNS: Node's resolver gets the live instances; tags, NXDOMAIN and NODATA as Consul answers", async () => {
  const name = unique('dnsapi');
  for (const [i, weight, tags] of [
    [1, 5, ['blue']],
    [2, 1, []],
  ]) {
    const res = await agentRegister({ ID: `${name}-${i}`, Name: name, Address: `127.0.0.${i}`, Port: 9000 + i, Tags: tags, Weights: { Passing: weight } });
    assert.equal(res.status, 200, await res.text());
  }
  const resolver = agent.resolver();
  assert.deepEqual((await resolver.resolve4(`${name}.service.consul`)).sort(), ['127.0.0.1', '127.0.0.2']);
  const srv = await resolver.resolveSrv(`_${name}._tcp.service.consul`);
  assert.deepEqual(
    srv.map(({ name: target, port, priority, weight }) => ({ target, port, priority, weight })).sort((a, b) => a.port - b.port),
    [
      { target: '7f000001.addr.dc1.consul', port: 9001, priority: 1, weight: 5 },
      { target: '7f000002.addr.dc1.consul', port: 9002, priority: 1, weight: 1 },
    ],
  );
  assert.deepEqual(await resolver.resolve4('7f000002.addr.dc1.consul'), ['127.0.0.2'], 'SRV targets resolve');
  assert.deepEqual(await resolver.resolve4(`blue.${name}.service.consul`), ['127.0.0.1']);
  assert.deepEqual(await resolver.resolve4(`${name}.service.dc1.consul`).then((a) => a.sort()), ['127.0.0.1', '127.0.0.2']);
  await assert.rejects(resolver.resolve4(`green.${name}.service.consul`), { code: 'ENOTFOUND' }, 'no instance with the tag: NXDOMAIN');
  await assert.rejects(resolver.resolve4(`${unique('nothing')}.service.consul`), { code: 'ENOTFOUND' }, 'unknown service: NXDOMAIN');
  await assert.rejects(resolver.resolve6(`${name}.service.consul`), { code: 'ENODATA' }, 'IPv4 only: NOERROR, no answer');
  await assert.rejects(resolver.resolve4('example.com'), { code: 'EREFUSED' }, 'outside the domain: refused');
  await assert.rejects(resolver.resolveTxt(`${name}.service.consul`), { code: 'ENODATA' });
  await assert.rejects(resolver.resolveMx(`${name}.service.consul`), { code: 'ENODATA' });

  // A service turned critical leaves DNS (selection never picks it).
  const drain = await agent.fetch(`/v1/agent/service/maintenance/${name}-1?enable=true&reason=deploy`, { method: 'PUT' });
  assert.equal(drain.status, 200);
  await waitFor(async () => (await resolver.resolve4(`${name}.service.consul`)).join() === '127.0.0.2', { message: 'the drained instance to leave DNS' });

});

test('dig @127.0.0.1 -p <port> <name>.service.consul SRV, over UDP and TCP', { skip: !HAS_DIG && 'dig is not installed (apt-get install dnsutils)' }, async () => {
  const name = unique('digapi');
  const res = await agentRegister({ ID: `${name}-1`, Name: name, Address: '127.0.0.3', Port: 9003, Weights: { Passing: 7 } });
  assert.equal(res.status, 200, await res.text());
  const dig = (...args) => run('dig', ['@127.0.0.1', '-p', String(agent.dnsPort), ...args, '+short']).then((r) => r.stdout.trim());
  assert.equal(await dig(`${name}.service.consul`, 'SRV'), '1 7 9003 7f000003.addr.dc1.consul.');
  assert.equal(await dig('+tcp', `${name}.service.consul`, 'A'), '127.0.0.3');
  assert.equal(await dig(`_${name}._tcp.service.consul`, 'SRV'), '1 7 9003 7f000003.addr.dc1.consul.');
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(agent.dnsPort), `${name}.service.consul`, 'AAAA']);
  assert.match(stdout, /status: NOERROR/);
  assert.match(stdout, /flags: qr aa rd;/);
  assert.match(stdout, /AUTHORITY: 1/, 'NODATA carries the SOA');
});

test('large answers are truncated over UDP and complete over TCP', async () => {
  const name = unique('wide');
  const count = 60;
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      server.fetch(`/v1/services/${name}/1.0.0/instances/i${i}`, {
        method: 'PUT',
        headers: server.auth(),
        body: JSON.stringify({ url: `10.0.${Math.floor(i / 200)}.${(i % 200) + 1}:80`, ttl: 120 }),
      }).then(async (res) => assert.equal(res.status, 200, await res.text())),
    ),
  );
  const resolver = agent.resolver();
  // c-ares sees TC and asks again over TCP: every instance.
  const all = await waitFor(async () => {
    const answer = await resolver.resolve4(`${name}.service.consul`);
    return answer.length === count && answer;
  }, { message: `${count} addresses` });
  assert.equal(new Set(all).size, count);

  // The UDP answer alone: fewer records, within 512 bytes, flagged truncated.
  const socket = dgram.createSocket('udp4');
  cleanups.push(() => new Promise((resolve) => socket.close(() => resolve())));
  const reply = new Promise((resolve) => socket.once('message', resolve));
  const query = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `${name}.service.consul` }] });
  socket.send(query, agent.dnsPort, '127.0.0.1');
  const raw = await reply;
  const packet = dnsPacket.decode(raw);
  assert.ok(raw.length <= 512, `${raw.length} bytes`);
  assert.equal(packet.flag_tc, true);
  assert.equal(packet.flag_aa, true);
  assert.ok(packet.answers.length > 0 && packet.answers.length < count, `${packet.answers.length} answers`);

  // A message that is not DNS gets FORMERR (when it has a header to answer), and the server
  // goes on answering.
  const garbage = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x05]), Buffer.alloc(6), Buffer.from('no questions here')]);
  const formerr = new Promise((resolve) => socket.once('message', resolve));
  socket.send(garbage, agent.dnsPort, '127.0.0.1');
  const bad = dnsPacket.decode(await formerr);
  assert.equal(bad.id, 0x1234);
  assert.equal(bad.rcode, 'FORMERR');
  assert.equal((await resolver.resolve4(`${name}.service.consul`)).length, count);
});

test('the registry stopped mid-test: answers come from the local copy, marked stale; services are back within 2 s of its return', async () => {
  const name = unique('sturdy');
  const res = await agentRegister({ ID: `${name}-1`, Name: name, Address: '127.0.0.9', Port: 8080 });
  assert.equal(res.status, 200, await res.text());
  const resolver = agent.resolver();
  assert.deepEqual(await resolver.resolve4(`${name}.service.consul`), ['127.0.0.9']);
  const fresh = await agent.fetch(`/v1/health/service/${name}`);
  assert.equal(fresh.headers.get('x-consul-knownleader'), 'true');
  assert.equal(fresh.headers.get('x-vasco-stale'), null);

  const { port, token } = server;
  await server.stop();

  // Still answering, from the copy, and saying so.
  const stale = await waitFor(async () => {
    const answer = await agent.fetch(`/v1/health/service/${name}`);
    return answer.headers.get('x-vasco-stale') === 'true' && answer;
  }, { message: 'a stale answer' });
  assert.equal(stale.headers.get('x-consul-knownleader'), 'false');
  assert.ok(Number(stale.headers.get('x-consul-lastcontact')) >= 0);
  assert.deepEqual((await stale.json()).map((e) => e.Service.Address), ['127.0.0.9']);
  assert.deepEqual(await resolver.resolve4(`${name}.service.consul`), ['127.0.0.9'], 'DNS answers from the copy');
  assert.equal((await agent.fetch('/v1/agent/services')).status, 200);

  // The registry returns on the same port and state: the agent registers again (a lease renewed
  // or taken anew after the restart ends at least one lease after it).
  server = await startWrangler({ persistDir, port, token });
  const back = Date.now();
  const listed = await waitFor(async () => {
    const [instance] = await edgeInstances(server, name);
    return instance && instance.expires_at >= back + LEASE_S * 1000 && instance;
  }, { timeout: 2_000, interval: 20, message: 'the service to be listed again with a lease taken after the restart' });
  assert.equal(listed.url, '127.0.0.9:8080');
  await waitFor(async () => (await agent.fetch(`/v1/health/service/${name}`)).headers.get('x-vasco-stale') === null, {
    message: 'answers to be fresh again',
  });
});

test('an agent killed and started again with its --data-dir registers its services again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vasco-agent-restart-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const args = ['--dns-addr', 'off', '--advertise-addr', '127.0.0.1', '--data-dir', dir];
  const first = await startAgent(server, args);
  const name = unique('phoenix');
  const res = await first.fetch('/v1/agent/service/register', { method: 'PUT', body: JSON.stringify({ ID: `${name}-1`, Name: name, Port: 4000 }) });
  assert.equal(res.status, 200, await res.text());
  assert.equal((await edgeInstances(server, name)).length, 1);
  await first.stop('SIGKILL');
  // Its lease socket closed with it: the registry dropped the instance at once.
  await waitFor(async () => (await edgeInstances(server, name)).length === 0, { message: 'the killed agent\'s service to leave' });
  const second = await startAgent(server, args);
  cleanups.push(() => second.stop('SIGKILL'));
  assert.ok(`${name}-1` in (await (await second.fetch('/v1/agent/services')).json()));
  await waitFor(async () => (await edgeInstances(server, name)).length === 1, { message: 'the service registered again' });
});

test('SIGTERM drains and deregisters every service registered through the agent, then exits 0', async () => {
  const second = await startAgent(server, ['--dns-addr', 'off', '--advertise-addr', '127.0.0.1']);
  cleanups.push(() => second.stop('SIGKILL'));
  const names = [unique('leaving'), unique('leaving')];
  for (const name of names) {
    const res = await second.fetch('/v1/agent/service/register', {
      method: 'PUT',
      body: JSON.stringify({ Name: name, Port: 5000, Check: { TTL: '30s', Status: 'passing' } }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal((await edgeInstances(server, name)).length, 1);
  }
  second.child.kill('SIGTERM');
  assert.deepEqual(await second.exited, { code: 0, signal: null }, second.output());
  for (const name of names) assert.deepEqual(await edgeInstances(server, name, '&all'), [], `${name} deregistered`);
  assert.match(second.output(), /draining and deregistering 2 service/);
});
