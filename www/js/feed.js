// The live view's change feed: the registry-wide WebSocket `GET /v1/watch`, and the page's copy
// of every service's members, kept in step with it by each service's change index.
//
// Loading: the socket's first message is the catalog (every service with members, and its
// index); each of those services is then read once with `GET /v1/services/{name}?consistent`
// (from its Durable Object: current, with its index in `x-vasco-index`, no KV operation).
// Changes that arrive meanwhile wait and are applied afterwards. From then on the page sends
// nothing and reads nothing while nothing changes: a `change` message is applied when its
// index is the next one for its service, ignored when it is not newer than what the page holds
// (a late or repeated message), and otherwise (a gap: a message was missed or overtaken) that
// one service is read again. A dropped socket is reopened with backoff and everything is
// loaded again, since changes made while it was down were never sent.
//
// Renewals are not sent on the feed (nor written anywhere), so an instance's `expires_at` here
// is its lease as the page last heard of it, not a prediction: membership changes, lease ends
// included, arrive as messages.

import * as api from './api.js';

/**
 * A ping every this long keeps proxies from closing an idle socket. The runtime answers it
 * (`pong`) itself, without waking the catalog object, so it costs no request.
 */
const PING_MS = 30_000;
/** No `pong` within this long after a ping: the socket is dead, reconnect. */
const PONG_TIMEOUT_MS = 10_000;
/** Services read at once while loading. */
const LOAD_CONCURRENCY = 6;
/**
 * Socket opens in a row that failed while a plain HTTP read of the same registry worked, after
 * which WebSockets are taken to be unavailable on this path (a proxy) and the page polls.
 */
const SOCKET_ONLY_FAILURES = 3;

/** `version` and `id`: an instance's key within its service. */
const keyOf = (instance) => `${instance.version}\n${instance.id}`;

/**
 * The page's copy of the registry's members, per service, each with the change index it is
 * current at. No DOM and no network (Node tests drive it).
 */
export class FeedModel {
  constructor() {
    /** @type {Map<string, {index: number, instances: any[]}>} */
    this.services = new Map();
  }

  /**
   * Replaces a service's members with a fresh read.
   * @param {string} name
   * @param {number} index the read's `x-vasco-index`
   * @param {any[]} instances in the registry's order: newest version first, then by id
   */
  load(name, index, instances) {
    this.services.set(name, { index: Number(index) || 0, instances: [...instances] });
  }

  /** The index the page holds for `name` (0: none known). */
  index(name) {
    return this.services.get(name)?.index ?? 0;
  }

  /**
   * Applies one `change` message.
   *
   * - `applied`: its index was the next one for its service; the members are updated.
   * - `old`: its index is not newer than what is held; nothing changes.
   * - `reload`: the service must be read again, because a change was missed (the index jumps,
   *   or none is known for the service), or because the message brings a version the page does
   *   not hold (where a version goes among the others is the registry's order, decided by the
   *   core; the read answers in that order). Nothing changes.
   *
   * @param {{service: string, index: number, added?: any[], updated?: any[], removed?: {version: string, id: string}[]}} event
   * @returns {'applied' | 'old' | 'reload'}
   */
  apply(event) {
    const held = this.services.get(event.service);
    const index = Number(event.index);
    if (held && held.index > 0 && index <= held.index) return 'old';
    if (!held || held.index === 0 || index !== held.index + 1) return 'reload';

    const gone = new Set((event.removed ?? []).map(keyOf));
    /** @type {Map<string, any>} */
    const changed = new Map();
    for (const instance of [...(event.added ?? []), ...(event.updated ?? [])]) {
      changed.set(keyOf(instance), instance);
      gone.delete(keyOf(instance));
    }
    const next = [];
    for (const instance of held.instances) {
      const key = keyOf(instance);
      if (gone.has(key)) continue;
      const fresh = changed.get(key);
      changed.delete(key);
      next.push(fresh ?? instance);
    }
    // New members go among those of their version, by id; a version not held needs a read.
    for (const instance of changed.values()) {
      let last = -1;
      let at = -1;
      for (let i = 0; i < next.length; i++) {
        if (next[i].version !== instance.version) continue;
        last = i;
        if (at < 0 && next[i].id > instance.id) at = i;
      }
      if (last < 0) return 'reload';
      next.splice(at < 0 ? last + 1 : at, 0, instance);
    }
    held.index = index;
    held.instances = next;
    return 'applied';
  }

  /** Every member, by service name, each service in the registry's order. */
  instances() {
    const names = [...this.services.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return names.flatMap((name) => /** @type {any} */ (this.services.get(name)).instances);
  }
}

/** Runs `task` over `items`, at most `limit` at a time; rejects with the first failure. */
async function inParallel(items, limit, task) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The feed's address for this page: same origin, `ws:` or `wss:`, the read token as `?token=`. */
export function watchUrl(base, token) {
  const url = new URL('/v1/watch', base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  return url.href;
}

/** The registry-wide change feed and the members it keeps current. */
export class Feed {
  /** Whether this browser has WebSockets at all (if not, the live view polls). */
  static supported() {
    return typeof globalThis.WebSocket === 'function';
  }

  /**
   * @param {{
   *   token: () => string,
   *   clock: import('./clock.js').ServerClock,
   *   onData: (instances: any[]) => void,
   *   onFailure: (err: unknown) => Promise<number> | number,
   *   retryDelay: (attempt: number) => Promise<number> | number,
   *   onFallback: () => void,
   * }} options `onData`: the members after a load or a change; `onFailure`: the feed is down,
   *   show it and answer how long to wait before reconnecting (ms); `retryDelay`: the wait
   *   before reopening a socket that failed while plain reads worked (0-based attempt);
   *   `onFallback`: WebSockets do not get through here, poll instead (the feed has stopped).
   */
  constructor(options) {
    this.options = options;
    this.model = new FeedModel();
    /** Bumped whenever the socket is given up: late callbacks of an old one do nothing. */
    this.generation = 0;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.stopped = true;
    /** Connecting or loading (the retry line says "Retrying now…"). */
    this.busy = false;
    this.loading = false;
    /** Messages that came while loading. */
    this.buffer = [];
    /** Services being read again, with the messages for them that came meanwhile. */
    this.reloading = new Map();
    this.socketFailures = 0;
    this.timer = 0;
    this.pingTimer = 0;
    this.pongTimer = 0;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.drop();
  }

  /** Drops the socket and any pending reconnect, and connects again at once. */
  reconnectNow() {
    if (this.stopped) return;
    this.connect();
  }

  /** Gives up the current socket and timers; callbacks still in flight become no-ops. */
  drop() {
    this.generation += 1;
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      // Closing a socket still connecting makes the browser log a warning: close it once open.
      if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
      else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    }
    this.busy = false;
    this.loading = false;
    this.buffer = [];
    this.reloading = new Map();
  }

  connect() {
    this.drop();
    const generation = this.generation;
    this.busy = true;
    this.loading = true;
    const openedAt = Date.now();
    let catalogSeen = false;
    let ws;
    try {
      ws = new WebSocket(watchUrl(location.href, this.options.token()));
    } catch (err) {
      void this.fail(generation, err, true);
      return;
    }
    this.ws = ws;
    ws.onmessage = (message) => {
      if (generation !== this.generation) return;
      clearTimeout(this.pongTimer);
      if (typeof message.data !== 'string' || message.data === 'pong') return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data?.type === 'catalog' && !catalogSeen) {
        catalogSeen = true;
        this.options.clock.observe(openedAt, Date.now(), null, String(data.now));
        void this.load(generation, Array.isArray(data.services) ? data.services : []);
      } else if (data?.type === 'change') {
        if (this.loading) this.buffer.push(data);
        else this.handle(generation, data);
      }
    };
    ws.onclose = () => {
      const err = new api.ApiError(
        catalogSeen ? 'Registry unreachable (the change feed closed)' : 'Registry unreachable (the change feed did not open)',
        { unreachable: true },
      );
      void this.fail(generation, err, !catalogSeen);
    };
  }

  /** Reads every service the catalog lists, then applies what came meanwhile. */
  async load(generation, services) {
    try {
      const model = new FeedModel();
      const names = services.map((s) => String(s.name));
      await inParallel(names, LOAD_CONCURRENCY, async (name) => {
        const { index, instances } = await this.read(name);
        model.load(name, index, instances);
      });
      if (generation !== this.generation) return;
      this.model = model;
      this.loading = false;
      this.busy = false;
      this.socketFailures = 0;
      const waiting = this.buffer;
      this.buffer = [];
      for (const event of waiting) {
        if (this.model.apply(event) === 'reload') void this.reload(generation, event);
      }
      this.options.onData(this.model.instances());
      this.keepAlive(generation);
    } catch (err) {
      void this.fail(generation, err, false);
    }
  }

  /**
   * One service, fresh from its object: `{index, instances}`, every leased instance (the page
   * shows critical and maintenance ones too, marked out of rotation; the feed sends their
   * changes as it sends any other).
   */
  async read(name) {
    const answer = await api.service(name, { token: this.options.token(), consistent: true, all: true });
    this.options.clock.observe(answer.sentAt, answer.receivedAt, answer.date, answer.now);
    const instances = Array.isArray(answer.body?.instances) ? answer.body.instances : [];
    return { index: Number(answer.index) || 0, instances };
  }

  /** Applies one `change` message (see {@link FeedModel#apply}). */
  handle(generation, event) {
    const waiting = this.reloading.get(event.service);
    if (waiting) {
      waiting.push(event);
      return;
    }
    const outcome = this.model.apply(event);
    if (outcome === 'applied') this.options.onData(this.model.instances());
    else if (outcome === 'reload') void this.reload(generation, event);
  }

  /** Reads `event`'s service again, then applies the messages for it that came meanwhile. */
  async reload(generation, event) {
    const name = event.service;
    if (this.reloading.has(name)) {
      this.reloading.get(name).push(event);
      return;
    }
    this.reloading.set(name, []);
    try {
      const { index, instances } = await this.read(name);
      if (generation !== this.generation) return;
      this.model.load(name, index, instances);
      const waiting = this.reloading.get(name) ?? [];
      this.reloading.delete(name);
      this.options.onData(this.model.instances());
      for (const later of waiting) this.handle(generation, later);
    } catch (err) {
      void this.fail(generation, err, false);
    }
  }

  /** Pings now and then; a ping left unanswered means the socket is dead. */
  keepAlive(generation) {
    this.pingTimer = setInterval(() => {
      if (generation !== this.generation || this.ws?.readyState !== WebSocket.OPEN) return;
      this.ws.send('ping');
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => {
        const err = new api.ApiError('Registry unreachable (no answer on the change feed)', { unreachable: true });
        void this.fail(generation, err, false);
      }, PONG_TIMEOUT_MS);
    }, PING_MS);
  }

  /**
   * The feed is down: report it and reconnect after the delay the view answers. When the
   * socket never opened, one plain read says why (a refused token, an outage) and is what the
   * view shows; if that read works, the page shows its data and, after a few such failures in
   * a row, falls back to polling.
   */
  async fail(generation, err, neverOpened) {
    if (generation !== this.generation || this.stopped) return;
    this.drop();
    const now = this.generation;
    let error = err;
    if (neverOpened) {
      try {
        const answer = await api.instances({ token: this.options.token() });
        if (now !== this.generation || this.stopped) return;
        this.options.clock.observe(answer.sentAt, answer.receivedAt, answer.date, answer.now);
        this.options.onData(Array.isArray(answer.body?.instances) ? answer.body.instances : []);
        this.socketFailures += 1;
        if (this.socketFailures >= SOCKET_ONLY_FAILURES) {
          this.stop();
          this.options.onFallback();
          return;
        }
        error = null;
      } catch (probe) {
        error = probe;
      }
    }
    if (now !== this.generation || this.stopped) return;
    const delay = await (error === null
      ? this.options.retryDelay(this.socketFailures - 1)
      : this.options.onFailure(error));
    if (now !== this.generation || this.stopped) return;
    this.busy = false;
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
