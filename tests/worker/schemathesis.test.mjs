// Schema-driven fuzzing of the Worker: Schemathesis (tests/requirements.txt, installed into
// .venv by scripts/setup.sh) reads GET /v1/openapi.json from a real `wrangler dev --local` and
// sends generated requests to every operation, valid ones and ones the schema says are invalid,
// with the write token. The run must end with zero failures: no 5xx, every status, content type,
// header and body as documented, every request the schema rejects refused with a 4xx, and
// unsupported methods answered 405.
//
// Bounded: a fixed seed, a fixed number of examples per operation and one worker, so a run
// takes about a minute and finds the same things each time.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ROOT, startWrangler } from '../support/wrangler.mjs';

const SCHEMATHESIS = join(ROOT, '.venv', 'bin', 'schemathesis');

/** The checks that must pass; each one is a kind of disagreement between schema and server. */
export const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'unsupported_method',
];

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 0 });
});
after(() => server?.stop());

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' },
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, output }));
  });
}

test('Schemathesis finds no failures against /v1/openapi.json', { timeout: 240_000 }, async () => {
  assert.ok(existsSync(SCHEMATHESIS), `${SCHEMATHESIS} is missing; run: bash scripts/setup.sh`);
  const { code, output } = await run(SCHEMATHESIS, [
    'run',
    `${server.url}/v1/openapi.json`,
    '--checks',
    CHECKS.join(','),
    '--header',
    `Authorization: Bearer ${server.token}`,
    '--phases',
    'examples,coverage,fuzzing',
    '--max-examples',
    '40',
    '--seed',
    '20261130',
    '--workers',
    '1',
    '--request-timeout',
    '10',
    '--suppress-health-check',
    'too_slow',
    '--no-shrink',
  ]);
  assert.equal(code, 0, `schemathesis exited ${code}:\n${output.slice(-20_000)}`);
  assert.match(output, /No issues found|passed/i, output.slice(-5_000));
});
