// scripts/dev.sh, the main command, as a user meets it: a busy port stops it before any work,
// with what to do; its banner's `export` line is all the README's curl examples need.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { ROOT, freePort } from '../support/wrangler.mjs';
import { run, start } from './run.mjs';

test('dev.sh on a busy port stops before installing or building anything, and says what to do', async () => {
  const busy = createServer();
  await new Promise((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const { port } = busy.address();
  try {
    const { code, output } = await run('bash', ['scripts/dev.sh'], { PORT: String(port) });
    assert.notEqual(code, 0, output);
    assert.match(output, new RegExp(`^dev: 127\\.0\\.0\\.1:${port} is already in use .*PORT=${port + 1} bash scripts/dev\\.sh\\n$`));
  } finally {
    busy.close();
  }
  const { code, output } = await run('bash', ['scripts/dev.sh'], { PORT: 'eighty' });
  assert.notEqual(code, 0);
  assert.equal(output, 'dev: PORT=eighty is not a port number (1-65535)\n');
});

/**
 * The README's curl examples of one section, each with the status its `# NNN` comment promises.
 * @returns {{command: string, status: number}[]}
 */
async function readmeExamples(section) {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${section}`);
  assert.ok(start >= 0, `README has a "## ${section}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const text = readme.slice(start, end < 0 ? undefined : end);
  const examples = [];
  for (const [, block] of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = block.replace(/\\\n\s*/g, ' ').split('\n');
    for (const line of lines) {
      const status = /^# (\d{3})\b/.exec(line);
      if (status && examples.length) examples.at(-1).status = Number(status[1]);
      else if (/^curl /.test(line)) examples.push({ command: line.trim(), status: 0 });
    }
  }
  return examples;
}

test('the README curl examples answer as documented in a shell given the export line dev.sh prints', async (t) => {
  const examples = await readmeExamples('HTTP API');
  assert.ok(examples.length >= 4, `found ${examples.length} curl examples`);
  for (const { command, status } of examples) assert.ok(status, `"${command}" documents its status`);

  const port = await freePort();
  const persist = await mkdtemp(join(tmpdir(), 'vasco-dev-kv-'));
  // The token comes in through VASCO_TOKEN so that the test does not write .dev.vars; the
  // shells running the examples get only PATH, HOME and what the banner's export line sets.
  const token = `dev-test-${randomBytes(8).toString('hex')}`;
  const dev = start(
    'bash',
    ['scripts/dev.sh', '--persist-to', persist, '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false'],
    { PORT: String(port), VASCO_TOKEN: token, VASCO_SKIP_BUILD: '1', WRANGLER_SEND_METRICS: 'false' },
  );
  try {
    const [exportLine] = await dev.waitFor(/^ *export VASCO_URL=\S+ VASCO_TOKEN=\S+$/m);
    assert.equal(exportLine.trim(), `export VASCO_URL=http://127.0.0.1:${port} VASCO_TOKEN=${token}`);
    // Up when /health answers (polled against a deadline; dev.sh exiting fails at once).
    const deadline = Date.now() + 90_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (up) break;
      if (dev.child.exitCode !== null || Date.now() > deadline) assert.fail(`dev.sh did not come up:\n${dev.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const curl = async (command) => {
      const script = `${exportLine.trim()}\n${command} --silent --show-error --output /dev/null --write-out '%{http_code}'`;
      const { code, output } = await run('bash', ['-c', script]);
      assert.equal(code, 0, `${command}: ${output}`);
      return Number(output);
    };
    for (const { command, status } of examples) {
      assert.equal(await curl(command), status, command);
      t.diagnostic(`${status} ${command}`);
    }
    // The banner's own examples, too.
    const banner = dev.output();
    const tries = banner.slice(banner.indexOf('then try:')).split('\n\n')[0].replace(/\\\n\s*/g, ' ').split('\n').filter((l) => /^\s*curl /.test(l));
    assert.equal(tries.length, 2, banner);
    for (const command of tries) assert.equal(await curl(command.trim()), 200, command);
  } finally {
    await dev.stop();
    await rm(persist, { recursive: true, force: true });
  }
});
