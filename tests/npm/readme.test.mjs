// The package README's examples are run as they are written: every ```js block runs against the
// in-process registry (VASCO_URL=memory:) with `vasco` resolving to the built package, and when
// a ```text block follows it, the output must be exactly that. The root README's npm section too.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { PKG, ROOT, loadVasco } from './helpers.mjs';

const run = promisify(execFile);

/** The ```js blocks of `markdown`, each with the ```text block that follows it, if any. */
export function examples(markdown) {
  const blocks = [...markdown.matchAll(/^```(\w*)[^\n]*\n([\s\S]*?)^```\s*$/gm)].map((m) => ({
    lang: m[1],
    code: m[2],
    end: m.index + m[0].length,
    start: m.index,
  }));
  const out = [];
  blocks.forEach((block, i) => {
    if (block.lang !== 'js') return;
    const next = blocks[i + 1];
    const between = next ? markdown.slice(block.end, next.start) : '';
    const expected = next && next.lang === 'text' && between.trim() === '' ? next.code : null;
    const line = markdown.slice(0, block.start).split('\n').length;
    out.push({ code: block.code, expected, line });
  });
  return out;
}

let dir;

before(async () => {
  await loadVasco(); // fails early with advice when the package is not built
  dir = await mkdtemp(join(tmpdir(), 'vasco-readme-'));
  await mkdir(join(dir, 'node_modules'));
  await symlink(PKG, join(dir, 'node_modules', 'vasco'), 'dir');
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sources = [
  { file: join(ROOT, 'crates', 'vasco-wasm', 'README.md'), section: null },
  { file: join(ROOT, 'README.md'), section: 'npm' },
];

for (const { file, section } of sources) {
  let markdown = await readFile(file, 'utf8');
  if (section) {
    const start = markdown.indexOf(`<!-- section: ${section} `);
    const rest = start < 0 ? '' : markdown.slice(start);
    const end = rest.indexOf('\n## ', 1);
    markdown = end < 0 ? rest : rest.slice(0, end);
  }
  const name = file.slice(ROOT.length + 1);
  const found = examples(markdown);
  if (!section) assert.ok(found.length >= 4, `${name} has its examples`);
  for (const example of found) {
    test(`${name}${section ? ` (${section})` : ''}, example at line ${example.line}`, async () => {
      const esm = /^\s*import\s/m.test(example.code) || /\bawait\b/.test(example.code.replace(/async[\s\S]*$/, ''));
      const script = join(dir, `example-${section ?? 'pkg'}-${example.line}.${esm ? 'mjs' : 'cjs'}`);
      await writeFile(script, example.code);
      const env = { ...process.env, VASCO_URL: 'memory:' };
      delete env.VASCO_TOKEN;
      delete env.DEBUG;
      const { stdout, stderr } = await run(process.execPath, [script], { cwd: dir, env, timeout: 20_000 });
      assert.equal(stderr, '', 'no warnings or errors');
      if (example.expected !== null) assert.equal(stdout, example.expected);
    });
  }
}
