// Entry point: tabs, the live view, the resolve box and the simulator.

import { LiveView } from './live.js';
import { ResolveBox } from './resolve.js';
import { loadCore } from './core.js';
import { Simulator } from './sim.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const TOKEN_KEY = 'vasco.readToken';
const tokenInput = /** @type {HTMLInputElement} */ ($('read-token'));
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  live.pollNow();
});
$('settings-form').addEventListener('submit', (event) => {
  event.preventDefault();
  tokenInput.dispatchEvent(new Event('change'));
});
const token = () => tokenInput.value.trim();

// The example in the empty state uses this registry's own address.
$('live-empty-example').textContent =
  `curl -X PUT -H "authorization: Bearer $VASCO_TOKEN" \\\n` +
  `  -d '{"url": "10.0.0.1:3000", "ttl": 30, "zone": "eu-1"}' \\\n` +
  `  ${location.origin}/v1/services/api/2.1.0/instances/a1`;

// The core loads once and serves the live view (lease and retry rules), the resolve box (names
// and picks) and the simulator.
const core = loadCore();

const live = new LiveView({
  groups: $('live-groups'),
  empty: $('live-empty'),
  summary: $('live-summary'),
  age: $('live-age'),
  status: $('live-status'),
  error: $('live-error'),
  errorText: $('live-error-text'),
  retryIn: $('live-retry-in'),
  retry: /** @type {HTMLButtonElement} */ ($('live-retry')),
  announcer: $('live-announcer'),
  token,
  core,
});

new ResolveBox({
  form: /** @type {HTMLFormElement} */ ($('resolve-form')),
  input: /** @type {HTMLInputElement} */ ($('resolve-input')),
  key: /** @type {HTMLInputElement} */ ($('resolve-key')),
  zone: /** @type {HTMLInputElement} */ ($('resolve-zone')),
  problem: $('resolve-problem'),
  output: $('resolve-output'),
  status: $('resolve-status'),
  token,
  core,
});

let simulator = null;
core.then(
  (loaded) => {
    $('sim-loading').hidden = true;
    $('sim-body').hidden = false;
    simulator = new Simulator(loaded, document);
    if (selectedView() === 'simulator') simulator.setVisible(true);
  },
  (err) => {
    $('sim-loading').hidden = true;
    $('sim-failed').hidden = false;
    $('sim-failed-text').textContent = `${err?.message ?? err}. Build it with scripts/build-wasm.sh.`;
  },
);

// Tabs (WAI-ARIA tabs pattern, automatic activation), mirrored in the URL hash.
const tabs = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('[role="tab"]')]);

/** The view a tab shows: `live` or `simulator` (its panel is `panel-<view>`, its hash `#<view>`). */
const viewOf = (tab) => /** @type {string} */ (tab.getAttribute('aria-controls')).replace(/^panel-/, '');

function selectedView() {
  const tab = tabs.find((t) => t.getAttribute('aria-selected') === 'true');
  return tab ? viewOf(tab) : 'live';
}

function select(view, { focus = false, updateHash = true } = {}) {
  for (const tab of tabs) {
    const on = viewOf(tab) === view;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${viewOf(tab)}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (updateHash && location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
  // The live view follows the registry only while shown; the simulator's clock keeps its own state.
  if (view === 'live') live.start();
  else live.stop();
  simulator?.setVisible(view === 'simulator');
}

for (const [index, tab] of tabs.entries()) {
  tab.addEventListener('click', () => select(viewOf(tab)));
  tab.addEventListener('keydown', (event) => {
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
    select(viewOf(next), { focus: true });
  });
}

function fromHash() {
  const view = location.hash.slice(1);
  select(view === 'simulator' ? 'simulator' : 'live', { updateHash: false });
}
window.addEventListener('hashchange', fromHash);
fromHash();
