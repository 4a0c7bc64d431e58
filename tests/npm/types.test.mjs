// The package's TypeScript types: a TypeScript user's code, from ESM and from CommonJS, checks
// with `tsc --strict` against the built package (NodeNext resolution, as published), and
// mistakes are caught.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { PKG, ROOT, loadVasco } from './helpers.mjs';

const run = promisify(execFile);
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

let dir;

before(async () => {
  await loadVasco();
  dir = await mkdtemp(join(tmpdir(), 'vasco-types-'));
  await mkdir(join(dir, 'node_modules', '@types'), { recursive: true });
  await symlink(PKG, join(dir, 'node_modules', 'vasco'), 'dir');
  await symlink(join(ROOT, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'ts-app', private: true, type: 'module' }));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ESM = `
import vasco, { connect, register, findDependencies, Registry, Selector, versionMatches, keyMovement,
  type Instance, type Resolution, type VascoError, type Registration, type PackageJson, type Status,
  type HealthCheckResult } from 'vasco';

const pkg: PackageJson = { name: 'user', version: '1.0.0', vasco: { dependencies: { service: '^1' }, aliveDuration: 3 } };
const handle: Registration | null = register('127.0.0.1:3000', pkg, (err: VascoError | null, urls?: Record<string, string>) => {
  if (err) console.log(err.code, err.missing);
  else console.log(urls?.service);
});
handle?.on('heartbeat', (instance: Instance) => console.log(instance.expires_at));
handle?.on('error', (error: VascoError) => console.log(error.code));
const promised = register('127.0.0.1:3000', pkg);
promised.registration?.deregister();
const urls: Record<string, string> = await findDependencies({ api: '^2' }, { auth: 'localhost:3000' });

const client = connect({ url: 'memory:', cacheTtl: 1000, outlier: { consecutiveFailures: 3 }, drainMs: 0 });
const check = async (): Promise<HealthCheckResult> => ({ status: 'warning', note: 'slow' });
const reg = await client.register({ name: 'api', version: '2.0.0', url: '10.0.0.1:80', ttl: 5, tags: ['a'], healthCheck: check, drainMs: 500 });
const held: Instance = await reg.setStatus('maintenance', 'deploy', { by: 'ci' });
const status: Status = held.status;
reg.on('status', (instance: Instance) => console.log(instance.reason, reg.status, reg.drainMs));
const every: Instance[] = await client.instances('api', { all: true });
const some: Instance[] = await client.instances('api', '^2', { status: ['passing', 'critical'] });
const passing: Instance = await client.pick('api', { passing: true, strategy: 'weighted' });
console.log(status, every, some, passing);
const picked: Instance = await client.pick('api', '^2', { strategy: 'maglev', key: 'user-1' });
const alsoPicked: Instance = await client.pick('api', { strategy: 'round-robin' });
const list: Instance[] = await client.instances('api', '^2', { zone: 'eu-1' });
const resolution: Resolution = await client.resolve({ api: '^2' });
const ejected: boolean = client.reportFailure('api', picked.url);
await reg.drain({ timeout: 100, reason: 'shutdown' });
await client.close({ deregister: false });

const registry = new Registry();
const inst: Instance = registry.register('api', '1.0.0', 'a', { url: 'h:1', ttl: 3 }, Date.now());
const down: Instance = registry.setStatus('api', '1.0.0', 'a', { check: { status: 'critical', note: 'db' } }, Date.now());
const listed: Instance[] = registry.instances('api', undefined, { status: 'critical' }, Date.now());
console.log(down, listed);
const selector = new Selector('ring', ['a', { id: 'b', weight: 2 }], { seed: 1 });
const index: number = selector.pick('k');
const counts: Uint32Array = selector.pickMany(100);
const ok: boolean = versionMatches('^1', '1.2.3');
const moved: number = keyMovement('maglev', ['a', 'b', 'c'], 0, 100).elsewhere;
console.log(urls, alsoPicked, list, resolution, ejected, inst, index, counts, ok, moved, vasco.strategies());
`;

const CJS = `
import vasco = require('vasco');
vasco.findDependencies({ api: '1.0.0' }, {}, (err, urls) => console.log(err?.message, urls));
const client: vasco.VascoClient = vasco.connect();
void client.catalog().then((catalog) => catalog.services.map((s) => s.name));
`;

const WRONG = `
import { connect, register } from 'vasco';
const client = connect({ url: 42 });
await client.pick('api', '^2', { strategy: 'fastest' });
register('h:1', { name: 'x' });
const reg = await client.register({ name: 'api', version: '1.0.0', url: 'h:1' });
await reg.setStatus('sleeping');
await client.register({ name: 'api', version: '1.0.0', url: 'h:1', healthCheck: 'always' });
`;

async function tsc(files) {
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', ...files];
  return run(TSC, args, { cwd: dir }).then(
    () => '',
    (error) => error.stdout + error.stderr,
  );
}

test('the types check a TypeScript app from ESM and CommonJS', { skip: !existsSync(TSC) && 'typescript is not installed' }, async () => {
  await writeFile(join(dir, 'esm.mts'), ESM);
  await writeFile(join(dir, 'cjs.cts'), CJS);
  assert.equal(await tsc(['esm.mts', 'cjs.cts']), '');
});

test('the types catch mistakes', { skip: !existsSync(TSC) && 'typescript is not installed' }, async () => {
  await writeFile(join(dir, 'wrong.mts'), WRONG);
  const out = await tsc(['wrong.mts']);
  assert.match(out, /wrong\.mts\(3,/, 'url must be a string');
  assert.match(out, /wrong\.mts\(4,.*fastest/, 'unknown strategy');
  assert.match(out, /wrong\.mts\(5,/, 'a package needs a version');
  assert.match(out, /wrong\.mts\(7,.*sleeping/, 'an unknown status');
  assert.match(out, /wrong\.mts\(8,/, 'healthCheck must be a function');
});
