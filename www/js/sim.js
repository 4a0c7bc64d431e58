// The simulator: the core's in-memory registry and selector (wasm) on a clock this page owns.
// Instances heartbeat while running; a killed one stops beating and its lease lapses in the
// core at `expires_at`. Each instance's health status can be set (the core's status set, as
// `PUT .../status`); the charts show the core's selector leaving critical and maintenance
// instances out. Time only moves when the page moves it (playing, or the +N s buttons), and
// every call into the core gets that simulated `now`.

import { PICK_MODES } from './core.js';
import { h, setText, syncOrder } from './dom.js';
import { formatRemaining, plural } from './format.js';

const SERVICE = 'api';
const RENDER_MS = 100;
/** Longest real-time step one animation frame may take, so a stalled tab does not leap. */
const MAX_FRAME_MS = 250;
const MOVE_STRATEGIES = [
  { strategy: 'maglev', label: 'Maglev' },
  { strategy: 'ring', label: 'Ring' },
];
/** The bounds of the key-movement panel's Keys field (its `min` and `max`). */
const MAX_MOVE_KEYS = 1_000_000;

const number = new Intl.NumberFormat('en');
const percent = (x) => `${(x * 100).toFixed(1)}%`;

/** One simulated instance: what the page knows that the registry does not (is it running). */
class Node {
  /**
   * @param {any} spec
   * @param {number} firstBeat when its first heartbeat is due (simulated ms)
   */
  constructor(spec, firstBeat) {
    this.id = spec.id;
    this.version = spec.version;
    this.url = spec.url;
    this.ttl = spec.ttl;
    this.weight = spec.weight;
    this.zone = spec.zone;
    this.running = true;
    this.nextBeat = firstBeat;
    this.expiresAt = 0;
    this.killedAt = 0;
    /** Its health status, as the core last said. */
    this.status = 'passing';
    this.row = null;
  }

  /** The registration body, as the HTTP API takes it. */
  spec() {
    const spec = { url: this.url, ttl: this.ttl, weight: this.weight };
    if (this.zone) spec.zone = this.zone;
    return spec;
  }
}

export class Simulator {
  /**
   * @param {import('./core.js').Core} core
   * @param {Document} doc
   */
  constructor(core, doc) {
    const $ = (id) => /** @type {any} */ (doc.getElementById(id));
    this.core = core;
    this.registry = core.registry();
    this.start = Math.floor(Date.now() / 1000) * 1000;
    this.now = this.start;
    this.playing = true;
    this.visible = false;
    this.speed = 1;
    this.raf = 0;
    this.lastFrame = 0;
    this.lastRender = 0;
    this.nextIp = 1;
    /** @type {Map<string, Node>} */
    this.nodes = new Map();
    /** Live instances as of the last sync, in the core's order (for key movement). */
    this.live = [];
    /** What the live set looked like when the charts and the movement panel were drawn. */
    this.drawnFor = '';
    /** The settings of the last round of picks, to redraw it when the live set changes. */
    this.lastPicks = null;
    /** Whether the movement panel shows a what-if for the selected instance (not an event). */
    this.movesPreview = false;

    this.ui = {
      time: $('sim-time'),
      play: $('sim-play'),
      speed: $('sim-speed'),
      rows: $('sim-rows'),
      count: $('sim-count'),
      empty: $('sim-empty'),
      add: $('sim-add'),
      addProblem: $('sim-add-problem'),
      picks: $('sim-picks'),
      picksProblem: $('sim-picks-problem'),
      picksSummary: $('sim-picks-summary'),
      charts: $('sim-charts'),
      moves: $('sim-moves'),
      moveTarget: $('sim-move-target'),
      moveKeys: $('sim-move-keys'),
      movesOutput: $('sim-moves-output'),
      log: $('sim-log'),
    };
    this.bind(doc);

    for (const [id, weight, zone] of [
      ['a', 1, 'eu-1'],
      ['b', 1, 'eu-1'],
      ['c', 2, 'us-1'],
    ]) {
      this.add({ id, version: '1.0.0', weight, zone, ttl: 10 });
    }
    this.suggestId();
    this.render();
    // Start with an answer in the key-movement panel: what removing the first instance moves.
    if (this.live.length > 1) this.showMovement(this.live, 0, 'If removed');
    this.drawnFor = this.liveSignature();
  }

  bind(doc) {
    const ui = this.ui;
    ui.play.addEventListener('click', () => this.setPlaying(!this.playing));
    for (const button of doc.querySelectorAll('[data-advance]')) {
      button.addEventListener('click', () => this.advance(Number(button.dataset.advance)));
    }
    ui.speed.addEventListener('change', () => {
      this.speed = Number(ui.speed.value) || 1;
    });
    ui.add.addEventListener('submit', (event) => {
      event.preventDefault();
      const form = new FormData(ui.add);
      const spec = {
        id: String(form.get('id')).trim(),
        version: String(form.get('version')).trim(),
        weight: Number(form.get('weight')),
        zone: String(form.get('zone')).trim(),
        ttl: Number(form.get('ttl')),
      };
      const problem = this.nodes.has(spec.id) ? `An instance "${spec.id}" already exists` : this.add(spec);
      setText(ui.addProblem, problem ?? '');
      if (!problem) {
        this.suggestId();
        this.render();
      }
    });
    ui.picks.addEventListener('submit', (event) => {
      event.preventDefault();
      this.firePicks();
    });
    ui.moves.addEventListener('submit', (event) => {
      event.preventDefault();
      const id = ui.moveTarget.value;
      const index = this.live.findIndex((i) => i.id === id);
      if (index >= 0) this.showMovement(this.live, index, 'If removed');
    });
    ui.moveKeys.addEventListener('change', () => {
      ui.moveKeys.setAttribute('aria-invalid', String(this.moveKeys() === null));
    });
  }

  /** Registers a new instance; returns a problem to show, or null. */
  add(spec) {
    const node = new Node({ ...spec, url: `10.0.0.${this.nextIp}:8080` }, this.now + this.heartbeatPeriod(spec.ttl));
    try {
      const instance = this.registry.register(SERVICE, node.version, node.id, node.spec(), this.now);
      node.version = instance.version;
      node.expiresAt = instance.expires_at;
    } catch (err) {
      return coreMessage(err);
    }
    this.nextIp += 1;
    this.nodes.set(node.id, node);
    this.log(`${node.id} registered (weight ${node.weight}${node.zone ? `, zone ${node.zone}` : ''}, ttl ${node.ttl} s)`);
    return null;
  }

  suggestId() {
    const input = /** @type {HTMLInputElement} */ (this.ui.add.elements.namedItem('id'));
    for (let n = 0; ; n++) {
      const id = n < 26 ? String.fromCharCode(97 + n) : `node-${n}`;
      if (!this.nodes.has(id)) {
        input.value = id;
        return;
      }
    }
  }

  setVisible(visible) {
    this.visible = visible;
    this.schedule();
  }

  setPlaying(playing) {
    this.playing = playing;
    this.ui.play.setAttribute('aria-pressed', String(playing));
    this.ui.play.textContent = playing ? 'Pause' : 'Play';
    this.log(playing ? 'clock resumed' : 'clock paused');
    this.schedule();
  }

  schedule() {
    const want = this.playing && this.visible;
    if (want && !this.raf) {
      this.lastFrame = performance.now();
      this.raf = requestAnimationFrame((t) => this.frame(t));
    } else if (!want && this.raf) {
      cancelAnimationFrame(this.raf);
      this.raf = 0;
    }
  }

  frame(timestamp) {
    this.raf = 0;
    if (!this.playing || !this.visible) return;
    const elapsed = Math.min(MAX_FRAME_MS, Math.max(0, timestamp - this.lastFrame));
    this.lastFrame = timestamp;
    this.advanceTo(this.now + elapsed * this.speed, false);
    if (timestamp - this.lastRender >= RENDER_MS) {
      this.lastRender = timestamp;
      this.render();
    }
    this.raf = requestAnimationFrame((t) => this.frame(t));
  }

  /** The +N s buttons: moves time at once, with every heartbeat due on the way. */
  advance(ms) {
    this.advanceTo(this.now + ms, true);
    this.render();
  }

  /**
   * Moves the clock to `target`: running instances beat on schedule on the way there, then the
   * core drops every lease that lapsed.
   */
  advanceTo(target, announce) {
    const from = this.now;
    target = Math.round(target);
    for (;;) {
      let next = null;
      for (const node of this.nodes.values()) {
        if (node.running && node.nextBeat <= target && (!next || node.nextBeat < next.nextBeat)) next = node;
      }
      if (!next) break;
      this.now = Math.max(this.now, next.nextBeat);
      this.beat(next);
    }
    this.now = target;
    this.expire();
    if (announce) this.log(`clock advanced ${((target - from) / 1000).toFixed(1)} s`);
  }

  beat(node) {
    try {
      const instance = this.registry.heartbeat(SERVICE, node.version, node.id, this.now);
      node.expiresAt = instance.expires_at;
      node.nextBeat = this.now + this.heartbeatPeriod(node.ttl);
    } catch (err) {
      // The lease lapsed before this beat (cannot happen on schedule; kept for safety).
      node.running = false;
      this.log(`${node.id}: heartbeat refused: ${coreMessage(err)}`);
    }
  }

  /**
   * The heartbeat period for a lease of `ttlSeconds`: the core's rule (a third of the TTL).
   * The simulator beats without jitter so that runs are repeatable.
   * @param {number} ttlSeconds
   */
  heartbeatPeriod(ttlSeconds) {
    return this.core.wasm.heartbeatPeriod(ttlSeconds * 1000);
  }

  /** Lets the core drop lapsed leases, and reports each removal. */
  expire() {
    const before = this.live;
    this.registry.expire(this.now);
    this.handleRemovals(before, 'lease lapsed');
  }

  /** Drains the core's change events; every removal leaves the table and the log. */
  handleRemovals(before, reason) {
    for (const change of this.registry.takeChanges()) {
      if (change.type !== 'remove' || change.service !== SERVICE) continue;
      const node = this.nodes.get(change.id);
      if (!node) continue;
      const when = reason === 'lease lapsed' ? node.expiresAt : this.now;
      const detail = reason === 'lease lapsed' && node.killedAt
        ? `, ${((node.expiresAt - node.killedAt) / 1000).toFixed(1)} s after it was killed`
        : '';
      this.log(`${node.id}: ${reason}${detail}`, when);
      node.row?.el.remove();
      this.nodes.delete(change.id);
      const index = before.findIndex((i) => i.id === change.id);
      if (index >= 0 && before.length > 1) this.showMovement(before, index, `${node.id} left`);
    }
    this.syncLive();
  }

  /** Every live instance, whatever its health status (the table shows them all). */
  syncLive() {
    this.live = this.registry.instances(SERVICE, undefined, { all: true }, this.now);
  }

  /** Sets an instance's health status in the core (a status set, at once). */
  setStatus(node, select) {
    const status = select.value;
    try {
      const instance = this.registry.setStatus(SERVICE, node.version, node.id, { status, by: 'simulator' }, this.now);
      node.expiresAt = instance.expires_at;
      this.log(`${node.id}: status set to ${status}${this.core.selectable(status) ? '' : ' (out of rotation)'}`);
    } catch (err) {
      this.log(`${node.id}: status refused: ${coreMessage(err)}`);
    }
    this.render();
  }

  kill(node) {
    node.running = false;
    node.killedAt = this.now;
    this.log(`${node.id} killed: no more heartbeats; the lease runs out in ${formatRemaining(node.expiresAt - this.now)}`);
    this.render();
  }

  revive(node) {
    node.running = true;
    node.killedAt = 0;
    this.beat(node);
    this.log(`${node.id} revived: heartbeating again`);
    this.render();
  }

  remove(node) {
    const before = this.live;
    try {
      this.registry.deregister(SERVICE, node.version, node.id, this.now);
    } catch (err) {
      this.log(`${node.id}: deregister refused: ${coreMessage(err)}`);
    }
    this.handleRemovals(before, 'deregistered');
    this.render();
  }

  /** Re-registers with a new weight or zone (an upsert, which also renews the lease). */
  update(node, field, input) {
    const previous = node[field];
    node[field] = field === 'weight' ? Number(input.value) : input.value.trim();
    try {
      const instance = this.registry.register(SERVICE, node.version, node.id, node.spec(), this.now);
      node.expiresAt = instance.expires_at;
      node.nextBeat = this.now + this.heartbeatPeriod(node.ttl);
      input.setAttribute('aria-invalid', 'false');
      setText(this.ui.addProblem, '');
      this.log(`${node.id}: ${field} set to ${node[field] || 'none'}`);
    } catch (err) {
      node[field] = previous;
      input.value = previous ?? '';
      setText(this.ui.addProblem, `${node.id}: ${coreMessage(err)}`);
    }
    this.render();
  }

  /** What the charts and the movement panel depend on: each live instance's id, version, weight, zone, status. */
  liveSignature() {
    return JSON.stringify(this.live.map((i) => [i.id, i.version, i.weight, i.zone ?? null, i.status]));
  }

  render() {
    this.syncLive();
    const ui = this.ui;
    // Charts and the what-if panel describe a live set; when it changed, draw them again.
    const signature = this.liveSignature();
    if (signature !== this.drawnFor) {
      this.drawnFor = signature;
      if (this.lastPicks) this.drawPicks(this.lastPicks, true);
      if (this.movesPreview) {
        const index = this.live.findIndex((i) => i.id === ui.moveTarget.value);
        if (index >= 0 && this.live.length > 1) this.showMovement(this.live, index, 'If removed');
      }
    }
    setText(ui.time, `t = ${((this.now - this.start) / 1000).toFixed(1)} s`);
    const ordered = [];
    for (const instance of this.live) {
      const node = this.nodes.get(instance.id);
      if (!node) continue;
      node.expiresAt = instance.expires_at;
      node.status = instance.status;
      if (!node.row) node.row = this.makeRow(node);
      this.updateRow(node);
      ordered.push(node.row.el);
    }
    syncOrder(ui.rows, ordered);
    setText(ui.count, `(${plural(this.live.length, 'live instance')})`);
    ui.empty.hidden = this.live.length > 0;

    // The "if removed" picker follows the live set, keeping the selection when it can.
    const ids = this.live.map((i) => i.id);
    const current = [...ui.moveTarget.options].map((o) => o.value);
    if (ids.join('\n') !== current.join('\n')) {
      const selected = ui.moveTarget.value;
      ui.moveTarget.replaceChildren(...ids.map((id) => h('option', { value: id }, id)));
      if (ids.includes(selected)) ui.moveTarget.value = selected;
    }
  }

  makeRow(node) {
    const weight = h('input', { type: 'number', min: 1, max: 1000, value: node.weight, 'aria-label': `Weight of ${node.id}` });
    const zone = h('input', { type: 'text', value: node.zone, 'aria-label': `Zone of ${node.id}`, autocomplete: 'off', spellcheck: 'false' });
    weight.addEventListener('change', () => this.update(node, 'weight', weight));
    zone.addEventListener('change', () => this.update(node, 'zone', zone));
    const toggle = h('button', { type: 'button', class: 'small' });
    toggle.addEventListener('click', () => (node.running ? this.kill(node) : this.revive(node)));
    const remove = h('button', { type: 'button', class: 'small', 'aria-label': `Remove ${node.id}` }, 'Remove');
    remove.addEventListener('click', () => this.remove(node));
    const status = h(
      'select',
      { 'aria-label': `Status of ${node.id}`, class: 'status-select' },
      ...this.core.statuses().map((name) => h('option', { value: name }, name)),
    );
    status.value = node.status ?? 'passing';
    status.addEventListener('change', () => this.setStatus(node, status));
    const remaining = h('span', { class: 'remaining' });
    const fill = h('span', { class: 'fill' });
    const state = h('span', { class: 'state' });
    const el = h(
      'tr',
      { 'data-id': node.id },
      h('th', { scope: 'row', class: 'id', 'data-label': 'Instance' }, node.id),
      h('td', { 'data-label': 'Version' }, node.version),
      h('td', { 'data-label': 'Weight' }, weight),
      h('td', { 'data-label': 'Zone' }, zone),
      h('td', { class: 'health', 'data-label': 'Status' }, status),
      h('td', { class: 'lease', 'data-label': 'Lease' }, h('span', {}, remaining, h('span', { class: 'bar', 'aria-hidden': 'true' }, fill))),
      h('td', { 'data-label': 'State' }, state),
      h('td', { 'data-label': 'Actions' }, h('span', { class: 'actions' }, toggle, remove)),
    );
    return { el, weight, zone, status, toggle, remaining, fill, state, shown: '', health: '' };
  }

  updateRow(node) {
    const row = node.row;
    const left = node.expiresAt - this.now;
    setText(row.remaining, formatRemaining(left));
    row.fill.style.transform = `scaleX(${Math.min(1, Math.max(0, left / (node.ttl * 1000))).toFixed(3)})`;
    // Ending: less than one heartbeat period left (the core's period), so a beat is late.
    row.el.classList.toggle('ending', left < this.heartbeatPeriod(node.ttl));
    const health = node.status ?? 'passing';
    if (row.health !== health) {
      row.health = health;
      row.status.value = health;
      row.el.dataset.status = health;
      // Out of rotation: the core's selector never picks this status.
      row.el.classList.toggle('out', !this.core.selectable(health));
    }
    const state = node.running ? 'running' : 'killed';
    if (row.shown !== state) {
      row.shown = state;
      row.state.dataset.state = state;
      row.state.textContent = node.running ? 'running' : 'killed';
      row.toggle.textContent = node.running ? 'Kill' : 'Revive';
      row.toggle.setAttribute('aria-label', `${node.running ? 'Kill' : 'Revive'} ${node.id}`);
      row.weight.disabled = !node.running;
      row.zone.disabled = !node.running;
    }
  }

  firePicks() {
    const ui = this.ui;
    const form = new FormData(ui.picks);
    const n = Math.floor(Number(form.get('n')));
    const range = String(form.get('range')).trim() || '*';
    const zone = String(form.get('zone')).trim();
    const seed = Math.floor(Number(form.get('seed')));
    if (!(n >= 1 && n <= 100_000)) return setText(ui.picksProblem, 'Picks must be between 1 and 100000');
    if (!(seed >= 0 && Number.isSafeInteger(seed))) return setText(ui.picksProblem, 'The seed must be a whole number ≥ 0');
    this.drawPicks({ n, range, zone, seed }, false);
  }

  /**
   * Fires `n` picks per strategy over the live instances matching `range` and draws the charts;
   * `redraw` says the live set changed since the same settings were last fired.
   * @param {{n: number, range: string, zone: string, seed: number}} settings
   * @param {boolean} redraw
   */
  drawPicks(settings, redraw) {
    const ui = this.ui;
    const { n, range, zone, seed } = settings;
    let instances;
    try {
      // A range picks among its newest live version with an instance in rotation, every status
      // of it shown: the core's rule, as in the npm client's pick (critical and maintenance
      // instances get no pick from the core's selector, and show as zero).
      instances = this.core.pickPool(this.registry.instances(SERVICE, range, { all: true }, this.now));
    } catch (err) {
      return setText(ui.picksProblem, `Version range: ${coreMessage(err)}`);
    }
    this.lastPicks = settings;
    if (instances.length === 0) {
      ui.charts.replaceChildren();
      setText(ui.picksSummary, '');
      return setText(ui.picksProblem, `No live instance of ${SERVICE} matches ${range}`);
    }
    setText(ui.picksProblem, '');
    const started = performance.now();
    const charts = [];
    const out = new Set(instances.filter((i) => !this.core.selectable(i.status)).map((i) => i.id));
    for (const mode of PICK_MODES) {
      if (mode.zone && !zone) continue;
      const counts = this.core.pickCounts(mode, instances, n, { zone, seed });
      charts.push(chart(mode, instances, counts, n, zone, out));
    }
    ui.charts.replaceChildren(...charts);
    const took = performance.now() - started;
    setText(
      ui.picksSummary,
      `${number.format(n)} picks with each of ${charts.length} strategies over ${plural(instances.length, 'instance')} at t = ${((this.now - this.start) / 1000).toFixed(1)} s, in ${took.toFixed(0)} ms` +
        (out.size ? ` (${plural(out.size, 'instance')} out of rotation, never picked)` : '') +
        (redraw ? ', drawn again because the live instances changed.' : '.'),
    );
  }

  /** The Keys field of the movement panel, or null when it is not a whole number in range. */
  moveKeys() {
    const keys = Number(this.ui.moveKeys.value);
    return Number.isInteger(keys) && keys >= 1 && keys <= MAX_MOVE_KEYS ? keys : null;
  }

  /** Shows how many keys move when `instances[index]` leaves, for each consistent hash. */
  showMovement(instances, index, title) {
    this.movesPreview = title === 'If removed';
    const removed = instances[index];
    const keys = this.moveKeys();
    if (keys === null) {
      this.ui.movesOutput.replaceChildren(
        h('p', { class: 'problem' }, `Keys must be a whole number from 1 to ${number.format(MAX_MOVE_KEYS)}.`),
      );
      return;
    }
    const items = MOVE_STRATEGIES.map(({ strategy, label }) => {
      const result = this.core.keyMovement(strategy, instances, index, keys);
      const share = this.core.keyShare(strategy, instances, index);
      return h(
        'li',
        {
          'data-strategy': strategy,
          'data-moved': result.moved,
          'data-from-removed': result.fromRemoved,
          'data-elsewhere': result.elsewhere,
          'data-total': result.total,
        },
        h('strong', {}, label),
        `: ${number.format(result.moved)} of ${number.format(result.total)} keys moved (${percent(result.fraction)}); `,
        `${number.format(result.fromRemoved)} were on ${removed.id}, ${number.format(result.elsewhere)} moved between the others. `,
        share === null ? '' : `${removed.id} owned ${percent(share)} of the key space.`,
      );
    });
    this.ui.movesOutput.replaceChildren(
      h('p', { class: 'moves-result' }, `${title}: ${removed.id} out of ${plural(instances.length, 'instance')}`),
      h('ul', { class: 'moves-list' }, ...items),
    );
  }

  log(message, at = this.now) {
    const item = h('li', {}, h('time', {}, `t = ${((at - this.start) / 1000).toFixed(1)} s`), message);
    this.ui.log.prepend(item);
    while (this.ui.log.childElementCount > 60) this.ui.log.lastElementChild?.remove();
  }
}

const NOTES = {
  random: 'uniform, ignores weights',
  'round-robin': 'each in turn, ignores weights',
  weighted: 'smooth weighted round robin',
  'least-request': 'power of two choices; every pick stays in flight',
  maglev: 'keys key-0 … key-(n−1)',
  ring: 'keys key-0 … key-(n−1), weighted virtual nodes',
};

/**
 * A bar chart of pick counts, with the numbers in the text (and in data attributes); instances
 * in `out` (out of rotation) are marked with their status.
 */
function chart(mode, instances, counts, n, zone, out) {
  const max = Math.max(1, ...counts);
  const note = mode.zone ? `weighted, local zone “${zone}”` : NOTES[mode.id];
  const titleId = `chart-${mode.id}`;
  return h(
    'figure',
    { class: 'chart', 'data-strategy': mode.id, 'aria-labelledby': titleId },
    h('figcaption', {}, h('h4', { id: titleId }, mode.label), h('p', { class: 'note' }, `${number.format(n)} picks · ${note}`)),
    h(
      'ol',
      {},
      ...instances.map((instance, i) => {
        const fill = h('span', { class: 'fill' });
        fill.style.transform = `scaleX(${(counts[i] / max).toFixed(4)})`;
        return h(
          'li',
          { 'data-id': instance.id, 'data-count': counts[i], 'data-status': instance.status, class: out.has(instance.id) ? 'out' : null },
          h('span', { class: 'who' }, instance.id, instance.status === 'passing' ? '' : h('span', { class: `badge badge-${instance.status}` }, instance.status)),
          h('span', { class: 'track', 'aria-hidden': 'true' }, fill),
          h('span', { class: 'value' }, `${number.format(counts[i])} · ${percent(counts[i] / n)}`),
        );
      }),
    ),
  );
}

/** The message of an error thrown by the wasm core (a JS Error with a `code`). */
function coreMessage(err) {
  return err instanceof Error ? err.message : String(err);
}
