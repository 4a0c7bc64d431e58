// bench/RESULTS.md, one section per bench script: each script replaces only its own section
// (from its `## ` heading to the next one), appending it when it is not there yet.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { ROOT } from '../tests/support/wrangler.mjs';

/** The results file every bench script writes a section of. */
export const RESULTS = join(ROOT, 'bench', 'RESULTS.md');

/**
 * Replaces the section that starts with `heading` (a `## ` line) by `text`, which starts with
 * that heading; appends it when the file has no such section (and creates the file if needed).
 */
export async function writeSection(heading, text) {
  let current;
  try {
    current = await readFile(RESULTS, 'utf8');
  } catch {
    current = '# Benchmark results\n\n';
  }
  const start = current.indexOf(heading);
  let next;
  if (start < 0) {
    next = `${current.trimEnd()}\n\n${text}`;
  } else {
    const after = current.indexOf('\n## ', start + heading.length);
    next = current.slice(0, start) + text + (after < 0 ? '' : `\n${current.slice(after + 1)}`);
  }
  await writeFile(RESULTS, `${next.trimEnd()}\n`);
}
