// The resolve box: `api@^2, @acme/auth@1.0.0` goes to `POST /v1/resolve` (names checked by the
// wasm core first); the answer is shown with, for each dependency, the instance every strategy
// of the wasm core would pick.

import * as api from './api.js';
import { announce, h } from './dom.js';
import { parseDependencies, plural } from './format.js';
import { PICK_MODES, whenLoaded } from './core.js';

export class ResolveBox {
  /**
   * @param {{
   *   form: HTMLFormElement, input: HTMLInputElement, key: HTMLInputElement,
   *   zone: HTMLInputElement, problem: HTMLElement, output: HTMLElement, status: HTMLElement,
   *   token: () => string, core: Promise<import('./core.js').Core>,
   * }} ui
   */
  constructor(ui) {
    this.ui = ui;
    /** @type {import('./core.js').Core | null} */
    this.core = null;
    whenLoaded(ui.core, (core) => {
      this.core = core;
    });
    this.seq = 0;
    ui.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.run();
    });
  }

  async run() {
    const ui = this.ui;
    // The core's name rule; should the core not load, the registry judges the names instead.
    const core = await ui.core.catch(() => null);
    const serviceName = core ? (name) => core.serviceName(name) : (name) => name;
    const { dependencies, written, error } = parseDependencies(ui.input.value, serviceName);
    ui.problem.textContent = error ?? '';
    ui.input.setAttribute('aria-invalid', String(Boolean(error)));
    if (error) {
      ui.input.focus();
      return;
    }
    const seq = ++this.seq;
    ui.output.setAttribute('aria-busy', 'true');
    try {
      const answer = await api.resolve(dependencies, { token: ui.token() });
      if (seq !== this.seq) return;
      this.render(dependencies, written, answer.body);
    } catch (err) {
      if (seq !== this.seq) return;
      ui.output.replaceChildren();
      ui.problem.textContent = err instanceof api.ApiError ? `Resolve failed: ${err.message}` : String(err);
    } finally {
      if (seq === this.seq) ui.output.removeAttribute('aria-busy');
    }
  }

  /**
   * @param {Record<string, string>} dependencies what was asked, by service name
   * @param {Record<string, string>} written the name typed for each service name
   * @param {{resolved?: Record<string, {version?: string, instances?: any[], mock?: string}>, missing?: string[]}} body
   */
  render(dependencies, written, body) {
    const resolved = body?.resolved ?? {};
    const missing = new Set(body?.missing ?? []);
    const names = Object.keys(dependencies);
    const asked = (name) => `${written[name] ?? name}@${dependencies[name]}`;
    const found = names.filter((name) => resolved[name]);

    const summary = h(
      'p',
      { class: 'resolve-summary' },
      `${found.length} of ${names.length} ${names.length === 1 ? 'dependency' : 'dependencies'} resolved`,
      missing.size ? `; missing: ${[...missing].map((name) => written[name] ?? name).join(', ')}` : '',
      '.',
    );

    const list = h('ul', { class: 'resolved-list' });
    for (const name of names) {
      const entry = resolved[name];
      if (!entry) {
        list.append(
          h('li', { class: 'missing', 'data-name': name }, h('code', {}, asked(name)), ': no live instance matches'),
        );
        continue;
      }
      const instances = entry.instances ?? [];
      const detail = entry.mock
        ? ` mocked to ${entry.mock}`
        : ` → ${entry.version} (${plural(instances.length, 'instance')}: ${instances.map((i) => `${i.id} ${i.url}${i.status && i.status !== 'passing' ? ` [${i.status}]` : ''}`).join(', ')})`;
      list.append(h('li', { 'data-name': name }, h('code', {}, asked(name)), detail));
    }

    announce(this.ui.status, summary.textContent);
    const parts = [summary, list];
    if (found.length > 0) parts.push(this.picksTable(found, written, resolved));
    this.ui.output.replaceChildren(...parts);
  }

  /** One row per strategy, one column per resolved dependency: the instance it picks. */
  picksTable(names, written, resolved) {
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'Strategy'),
      ...names.map((name) => h('th', { scope: 'col' }, written[name] ?? name)),
    );
    const body = h('tbody');
    const key = this.ui.key.value;
    const zone = this.ui.zone.value.trim();
    for (const mode of PICK_MODES) {
      const cells = names.map((name) => {
        const entry = resolved[name];
        if (entry.mock) return h('td', {}, h('span', { class: 'picked' }, entry.mock));
        if (!this.core) return h('td', { class: 'none' }, 'core not loaded');
        if (mode.zone && !zone) return h('td', { class: 'none' }, 'set a local zone');
        const instances = entry.instances ?? [];
        const index = this.core.pickOnce(mode, instances, { key, zone });
        const chosen = index === null ? null : instances[index];
        return h(
          'td',
          { 'data-strategy': mode.id, 'data-name': name },
          chosen ? h('span', { class: 'picked' }, chosen.id) : '—',
          chosen ? h('span', { class: 'hint' }, ` ${chosen.url}`) : '',
        );
      });
      body.append(h('tr', { 'data-strategy': mode.id }, h('th', { scope: 'row' }, mode.label), ...cells));
    }
    const note = `One pick per strategy by the wasm core. Consistent hashing hashes the key “${key}”; ` +
      (zone ? `zone preference prefers “${zone}”.` : 'zone preference needs a local zone.') +
      ' Critical and maintenance instances are not resolved and never picked; warning ones only when no passing one is left.';
    return h(
      'div',
      { class: 'picks-block' },
      h('p', { class: 'hint' }, note),
      h(
        'div',
        { class: 'table-wrap' },
        h('table', { class: 'picks', id: 'resolve-picks' }, h('caption', { class: 'visually-hidden' }, 'Instance each strategy picks'), h('thead', {}, head), body),
      ),
    );
  }
}
