// The live view: loads the registry once and follows its change feed (feed.js; where the
// browser has no WebSocket it polls about once a second instead), keeping a table per
// `name@version` in step. Rows are keyed by instance id and updated in place, so an update
// that changes nothing touches no DOM, and hundreds of instances cost a few text updates per
// tick (the countdowns).

import * as api from './api.js';
import { ServerClock } from './clock.js';
import { whenLoaded } from './core.js';
import { Feed } from './feed.js';
import { announce, h, setText, syncOrder } from './dom.js';
import { elementId, formatAge, formatRemaining, plural } from './format.js';

const POLL_MS = 1000;
const TICK_MS = 200;
/** The retry backoff's first ceiling and its cap (the core's `Backoff` draws each delay). */
const RETRY = { baseMs: 1000, maxMs: 30_000 };
/** The retry delay when the wasm core did not load (no jitter then, and no growth). */
const RETRY_WITHOUT_CORE_MS = 5000;
/**
 * What the countdown shows once the lease as last heard of has run out while the instance is
 * still a member: it has renewed since (renewals are not sent to the page; a lease that ends
 * is a removal, and the registry sends that).
 */
const RENEWED = 'renewed';

/**
 * The core's rules the rows use, once it has loaded (null before).
 * @typedef {{heartbeatPeriod(ttlMs: number): number | null, selectable(status: string): boolean | null}} Rules
 */

/** One row of an instance table. */
class Row {
  /**
   * @param {any} instance
   * @param {Rules} leases the core's lease and selection rules
   */
  constructor(instance, leases) {
    this.id = instance.id;
    this.leases = leases;
    /** The health status and reason shown; whether it is out of rotation (null: not known yet). */
    this.health = '';
    this.out = null;
    this.statusCell = h('td', { class: 'health', 'data-label': 'Status' });
    /** Less time left than this means a heartbeat is late (the core's period; null until known). */
    this.period = null;
    this.remaining = h('span', { class: 'remaining' });
    this.fill = h('span', { class: 'fill' });
    this.url = h('td', { class: 'url', 'data-label': 'URL' });
    this.zone = h('td', { class: 'zone', 'data-label': 'Zone' });
    this.weight = h('td', { class: 'weight num', 'data-label': 'Weight' });
    this.tags = h('td', { class: 'tags', 'data-label': 'Tags' });
    this.meta = h('td', { class: 'meta', 'data-label': 'Meta' });
    this.el = h(
      'tr',
      { 'data-id': instance.id },
      h('th', { scope: 'row', class: 'id', 'data-label': 'Instance' }, instance.id),
      this.statusCell,
      this.url,
      this.zone,
      this.weight,
      this.tags,
      this.meta,
      h(
        'td',
        { class: 'lease', 'data-label': 'Expires in' },
        h('span', {}, this.remaining, h('span', { class: 'bar', 'aria-hidden': 'true' }, this.fill)),
      ),
    );
    this.signature = '';
    this.expiresAt = 0;
    this.ttlMs = 1;
    this.shown = '';
    this.scale = '';
    this.update(instance);
  }

  /**
   * Applies a fresh copy of the instance; only changed cells are written. Returns the new
   * health status (with its reason) when it changed, else null.
   */
  update(instance) {
    const moved = this.updateHealth(instance);
    this.expiresAt = Number(instance.expires_at);
    const ttlMs = Math.max(1, Number(instance.ttl_ms) || 1);
    if (ttlMs !== this.ttlMs) this.period = null;
    this.ttlMs = ttlMs;
    const tags = Array.isArray(instance.tags) ? instance.tags : [];
    const meta = instance.meta && typeof instance.meta === 'object' ? Object.entries(instance.meta) : [];
    const signature = JSON.stringify([instance.url, instance.zone, instance.weight, tags, meta]);
    if (signature === this.signature) return moved;
    this.signature = signature;
    setText(this.url, String(instance.url));
    setText(this.zone, instance.zone ?? '—');
    this.zone.classList.toggle('none', !instance.zone);
    setText(this.weight, String(instance.weight ?? 1));
    this.tags.replaceChildren(
      tags.length ? h('span', {}, ...tags.map((tag) => h('span', { class: 'tag' }, tag))) : '—',
    );
    this.meta.replaceChildren(
      meta.length
        ? h('span', {}, ...meta.map(([key, value]) => h('span', { class: 'tag meta-entry', 'data-key': key }, `${key}=${value}`)))
        : '—',
    );
    return moved;
  }

  /** The status badge and reason; returns `status (reason)` when they changed, else null. */
  updateHealth(instance) {
    const status = String(instance.status ?? 'passing');
    const reason = instance.reason ? String(instance.reason) : '';
    const health = reason ? `${status} (${reason})` : status;
    if (health === this.health) return null;
    const first = this.health === '';
    this.health = health;
    this.status = status;
    this.el.dataset.status = status;
    this.badge = h('span', { class: `badge badge-${status}` }, status);
    this.statusCell.replaceChildren(this.badge, reason ? h('span', { class: 'reason' }, reason) : '');
    this.out = null;
    this.markRotation();
    return first ? null : health;
  }

  /**
   * Greys the row out when selection never picks its status (the core's rule; decided once the
   * core has loaded, by the next tick if not yet).
   */
  markRotation() {
    if (this.out !== null) return;
    const selectable = this.leases.selectable(this.status);
    if (selectable === null) return;
    this.out = !selectable;
    this.el.classList.toggle('out', this.out);
    if (this.out) this.statusCell.append(h('span', { class: 'rotation' }, 'out of rotation'));
  }

  /** Updates the countdown for the server time `now`. */
  tick(now) {
    this.markRotation();
    const left = this.expiresAt - now;
    const text = formatRemaining(left);
    if (this.period === null) this.period = this.leases.heartbeatPeriod(this.ttlMs);
    if (text !== this.shown) {
      this.shown = text;
      this.remaining.textContent = left > 0 ? text : RENEWED;
      // No "ending soon" warning: every healthy instance passes through the end of its lease
      // as last heard of (renewals are not sent), so it would flag them all.
      this.el.classList.toggle('renewed', left <= 0);
    }
    const scale = `scaleX(${Math.min(1, Math.max(0, left / this.ttlMs)).toFixed(3)})`;
    if (scale !== this.scale) {
      this.scale = scale;
      this.fill.style.transform = scale;
    }
  }
}

/** The table of one `name@version`. */
class Group {
  /**
   * @param {string} service
   * @param {string} version
   * @param {{heartbeatPeriod(ttlMs: number): number | null}} leases
   */
  constructor(service, version, leases) {
    this.key = `${service}@${version}`;
    this.leases = leases;
    // `@` is in neither names nor versions, so keys (and their ids) differ for distinct pairs.
    const headingId = elementId('live-group-', this.key);
    this.count = h('span', { class: 'count' });
    this.tbody = h('tbody');
    /** @type {Map<string, Row>} */
    this.rows = new Map();
    this.el = h(
      'section',
      { class: 'group', 'data-key': this.key, 'aria-labelledby': headingId },
      h(
        'h3',
        { id: headingId },
        h('span', { class: 'svc' }, service),
        h('span', { class: 'ver' }, `@${version}`),
        ' ',
        this.count,
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { 'aria-labelledby': headingId },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Instance'),
              h('th', { scope: 'col' }, 'Status'),
              h('th', { scope: 'col' }, 'URL'),
              h('th', { scope: 'col' }, 'Zone'),
              h('th', { scope: 'col', class: 'num' }, 'Weight'),
              h('th', { scope: 'col' }, 'Tags'),
              h('th', { scope: 'col' }, 'Meta'),
              h('th', { scope: 'col' }, 'Expires in'),
            ),
          ),
          this.tbody,
        ),
      ),
    );
  }

  /**
   * Brings the rows in line with `instances` (in display order).
   * @returns {{added: string[], removed: string[], moved: string[]}} `moved`: `id status (reason)`
   *   of each row whose health status changed
   */
  sync(instances) {
    const added = [];
    const removed = [];
    const moved = [];
    const seen = new Set();
    const ordered = [];
    for (const instance of instances) {
      seen.add(instance.id);
      let row = this.rows.get(instance.id);
      if (row) {
        const health = row.update(instance);
        if (health) moved.push(`${instance.id} ${health}`);
      } else {
        row = new Row(instance, this.leases);
        this.rows.set(instance.id, row);
        added.push(instance.id);
      }
      ordered.push(row.el);
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.el.remove();
        this.rows.delete(id);
        removed.push(id);
      }
    }
    syncOrder(this.tbody, ordered);
    setText(this.count, plural(this.rows.size, 'instance'));
    return { added, removed, moved };
  }

  tick(now) {
    for (const row of this.rows.values()) row.tick(now);
  }
}

export class LiveView {
  /**
   * @param {{
   *   groups: HTMLElement, empty: HTMLElement, summary: HTMLElement, age: HTMLElement,
   *   status: HTMLElement, error: HTMLElement, errorText: HTMLElement, retryIn: HTMLElement,
   *   retry: HTMLButtonElement, announcer: HTMLElement, token: () => string,
   *   core: Promise<import('./core.js').Core>,
   * }} ui
   */
  constructor(ui) {
    this.ui = ui;
    /** @type {import('./core.js').Core | null} */
    this.core = null;
    whenLoaded(ui.core, (core) => {
      this.core = core;
    });
    /** The core's lease and selection rules, once it has loaded. */
    this.leases = {
      heartbeatPeriod: (ttlMs) => this.core?.heartbeatPeriod(ttlMs) ?? null,
      selectable: (status) => (this.core ? this.core.selectable(status) : null),
    };
    /** The core's retry backoff, made on the first failure. */
    this.backoff = null;
    this.clock = new ServerClock();
    /** @type {Map<string, Group>} */
    this.groups = new Map();
    this.lastUpdate = 0;
    this.updates = 0;
    this.loaded = false;
    this.failures = 0;
    this.retryAt = 0;
    this.timer = 0;
    this.ticker = 0;
    this.polling = false;
    this.stopped = true;
    /** Latest snapshot of live instances, for the resolve box's neighbours. */
    this.instances = [];
    /** The change feed; null where WebSockets are unavailable (then the view polls). */
    this.feed = Feed.supported()
      ? new Feed({
          token: ui.token,
          clock: this.clock,
          onData: (instances) => this.fed(instances),
          onFailure: (err) => this.feedFailed(err),
          retryDelay: (attempt) => this.retryDelay(attempt),
          onFallback: () => {
            this.feed = null;
            this.pollNow();
          },
        })
      : null;
    ui.retry.addEventListener('click', () => this.pollNow());
    this.onVisibility = () => {
      // The feed stays open in a hidden tab: idle, it costs nothing.
      if (this.feed) return;
      if (document.hidden) {
        clearTimeout(this.timer);
      } else if (!this.stopped) {
        this.pollNow();
      }
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    document.addEventListener('visibilitychange', this.onVisibility);
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    if (this.feed) this.feed.start();
    else this.pollNow();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.feed?.stop();
  }

  /** Polls at once (the retry button, a tab coming back into view); with the feed, reconnects and reloads. */
  pollNow() {
    if (this.feed) {
      this.feed.reconnectNow();
      return;
    }
    clearTimeout(this.timer);
    if (!this.polling) void this.poll();
  }

  async poll() {
    this.polling = true;
    let delay = POLL_MS;
    try {
      await this.refresh();
      this.failures = 0;
      this.retryAt = 0;
      this.ui.error.hidden = true;
      this.ui.groups.classList.remove('stale');
    } catch (err) {
      this.showError(err);
      delay = await this.retryDelay(this.failures);
      this.failures += 1;
      this.retryAt = Date.now() + delay;
    } finally {
      this.polling = false;
    }
    this.tick();
    if (!this.stopped && !document.hidden) {
      this.timer = setTimeout(() => void this.poll(), delay);
    }
  }

  /** The wait before retry number `attempt` (0-based): the core's backoff decides. */
  async retryDelay(attempt) {
    if (!this.backoff) {
      try {
        this.backoff = (await this.ui.core).backoff(RETRY);
      } catch {
        return RETRY_WITHOUT_CORE_MS;
      }
    }
    return this.backoff.delay(attempt);
  }

  /** The feed's members, after a load or a change. */
  fed(instances) {
    this.failures = 0;
    this.retryAt = 0;
    this.ui.error.hidden = true;
    this.ui.groups.classList.remove('stale');
    this.lastUpdate = Date.now();
    this.updates += 1;
    this.render(instances);
    this.ui.groups.dataset.updates = String(this.updates);
    this.tick();
  }

  /** The feed is down: show it, and answer the wait before it reconnects (ms). */
  async feedFailed(err) {
    const delay = await this.retryDelay(this.failures);
    this.failures += 1;
    this.retryAt = Date.now() + delay;
    this.showError(err);
    this.tick();
    return delay;
  }

  showError(err) {
    const ui = this.ui;
    let message = err instanceof api.ApiError ? err.message : `Unexpected error: ${err}`;
    if (err instanceof api.ApiError && err.status === 401) {
      message = `The registry refused the read (${err.message}). Set a read token under Settings.`;
    }
    setText(ui.errorText, message);
    ui.error.hidden = false;
    // Whatever the last answer said about the registry (such as "reachable and empty") is no
    // longer known; the last instances stay, marked stale.
    ui.empty.hidden = true;
    setText(ui.status, this.loaded ? 'Disconnected' : 'Not connected');
    ui.status.dataset.state = 'error';
    ui.groups.classList.toggle('stale', this.loaded);
  }

  /** One poll: one request for every live instance (`GET /v1/instances`). */
  async refresh() {
    const answer = await api.instances({ token: this.ui.token() });
    this.clock.observe(answer.sentAt, answer.receivedAt, answer.date, answer.now);
    const instances = Array.isArray(answer.body?.instances) ? answer.body.instances : [];
    this.lastUpdate = Date.now();
    this.updates += 1;
    this.render(instances);
    // A counter of successful polls, for tests and the curious (no DOM work besides this).
    this.ui.groups.dataset.updates = String(this.updates);
  }

  /**
   * @param {any[]} instances by service name, newest version first, then by id (the
   *   registry's order, which is also the order of the groups)
   */
  render(instances) {
    this.instances = instances;
    /** @type {Map<string, {service: string, version: string, list: any[]}>} */
    const wanted = new Map();
    for (const instance of instances) {
      const key = `${instance.service}@${instance.version}`;
      let entry = wanted.get(key);
      if (!entry) {
        entry = { service: instance.service, version: instance.version, list: [] };
        wanted.set(key, entry);
      }
      entry.list.push(instance);
    }

    const added = [];
    const removed = [];
    const moved = [];
    const ordered = [];
    for (const [key, entry] of wanted) {
      let group = this.groups.get(key);
      if (!group) {
        group = new Group(entry.service, entry.version, this.leases);
        this.groups.set(key, group);
      }
      const change = group.sync(entry.list);
      for (const id of change.added) added.push(`${key} ${id}`);
      for (const id of change.removed) removed.push(`${key} ${id}`);
      for (const what of change.moved) moved.push(`${key} ${what}`);
      ordered.push(group.el);
    }
    for (const [key, group] of this.groups) {
      const entry = wanted.get(key);
      if (!entry) {
        for (const id of group.rows.keys()) removed.push(`${key} ${id}`);
        group.el.remove();
        this.groups.delete(key);
      }
    }
    syncOrder(this.ui.groups, ordered);

    const ui = this.ui;
    const serviceCount = new Set(instances.map((i) => i.service)).size;
    ui.empty.hidden = instances.length !== 0;
    setText(
      ui.summary,
      `${plural(serviceCount, 'service')} · ${plural(this.groups.size, 'version')} · ${plural(instances.length, 'instance')}`,
    );
    setText(ui.status, 'Connected');
    ui.status.dataset.state = 'ok';
    if (this.loaded) announce(ui.announcer, describeChanges(added, removed, moved));
    this.loaded = true;
  }

  /** Countdowns, the age of the data and the retry countdown. */
  tick() {
    const now = this.clock.now();
    for (const group of this.groups.values()) group.tick(now);
    const ui = this.ui;
    setText(ui.age, this.lastUpdate ? `${formatAge(Date.now() - this.lastUpdate)} ago` : 'never');
    if (!ui.error.hidden) {
      const wait = this.retryAt - Date.now();
      setText(ui.retryIn, this.polling || this.feed?.busy ? 'Retrying now…' : `Retrying in ${Math.max(0, Math.ceil(wait / 1000))} s.`);
    }
  }
}

/** A short sentence for screen readers about what one update changed. */
function describeChanges(added, removed, moved) {
  const parts = [];
  if (moved.length > 0 && moved.length <= 3) parts.push(`Status: ${moved.join(', ')}.`);
  else if (moved.length > 3) parts.push(`${plural(moved.length, 'instance')} changed status.`);
  if (added.length > 0 && added.length <= 3) parts.push(`Registered: ${added.join(', ')}.`);
  else if (added.length > 3) parts.push(`${plural(added.length, 'instance')} registered.`);
  if (removed.length > 0 && removed.length <= 3) parts.push(`Gone: ${removed.join(', ')}.`);
  else if (removed.length > 3) parts.push(`${plural(removed.length, 'instance')} gone.`);
  return parts.join(' ');
}
