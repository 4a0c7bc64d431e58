// Headless Debian Chromium for the page suites, driven by playwright-core (which cannot
// download its own browser here: the system one at /usr/bin/chromium is used), and a watcher
// that records everything a page should never do: console errors or warnings, uncaught
// exceptions, failed requests, HTTP error answers.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { ROOT } from '../support/wrangler.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Screenshots of every run (gitignored). */
export const ARTIFACTS = join(ROOT, 'tests', 'artifacts');
/** Screenshots linked from the README, rewritten only with VASCO_UPDATE_SCREENSHOTS=1. */
export const DOC_SCREENSHOTS = join(ROOT, 'docs', 'screenshots');

/** Launches Chromium headless, with no network chatter of its own. */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it (sudo apt-get install chromium; scripts/setup.sh does it when run as root) or set CHROMIUM_PATH`);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Records a page's problems. `problems()` lists them as strings; `expect(pattern)` excuses
 * the ones a test provokes on purpose (an unreachable registry).
 * @param {import('playwright-core').Page} page
 */
export function watch(page) {
  const seen = [];
  const excused = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      seen.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
    }
  });
  page.on('pageerror', (error) => seen.push(`uncaught: ${error.stack ?? error.message}`));
  page.on('requestfailed', (request) => {
    seen.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      seen.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
    }
  });
  return {
    expect(pattern) {
      excused.push(pattern);
    },
    problems() {
      return seen.filter((line) => !excused.some((pattern) => pattern.test(line)));
    },
  };
}

/** Saves a screenshot as a test artifact, and as a README screenshot when asked to. */
export async function screenshot(target, name, { doc = false, ...options } = {}) {
  await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), ...options });
  if (doc && process.env.VASCO_UPDATE_SCREENSHOTS === '1') {
    await mkdir(DOC_SCREENSHOTS, { recursive: true });
    await target.screenshot({ path: join(DOC_SCREENSHOTS, `${name}.png`), ...options });
  }
}
