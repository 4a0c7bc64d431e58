'use strict'
// Change feeds: one WebSocket per service the client uses (GET /v1/services/{name}/watch).
// The wasm core applies each message to the service's membership and answers the cache from
// it (no polling while a feed is open; see src/api/socket.rs); this file owns the sockets,
// reconnects them with the core's backoff, keeps them alive with `ping`, and runs
// `client.watch()` listeners.
//
// In `memory:` mode there are no sockets: watch() polls the in-process registry every
// MEMORY_POLL_MS and calls the listener when the answer changed.

const WebSocket = require('ws')

/** How often a socket is pinged; one without any message for two periods is dropped. */
const PING_MS = 15_000
/** The longest wait between two reconnects of a feed (backoff from 100 ms up to this). */
const RECONNECT_MAX_MS = 5_000
/** A refused upgrade (no feeds on this registry) is retried this rarely. */
const REFUSED_RETRY_MS = 60_000
/**
 * The longest a first lookup of a service waits for its feed's snapshot (which comes from the
 * service's object, current everywhere) before asking over HTTP instead (a default read, which
 * may trail writes by about a second).
 */
const FIRST_SNAPSHOT_WAIT_MS = 2_000
/** watch() in memory: mode looks this often. */
const MEMORY_POLL_MS = 250

/**
 * Keeps an open WebSocket honest: sends `ping` every PING_MS and terminates it (its `close`
 * handler then reconnects) when nothing at all was heard over a whole period. The change feeds
 * here and the agent's leases and feeds (agent/edge.cjs) share it.
 * @param {WebSocket} ws an open socket
 * @param {{onSilent?: () => void, unref?: boolean}} [options] `onSilent` runs before a silent
 *   socket is terminated (to log it); `unref`: the pings do not keep Node running
 * @returns {{heard(): void, stop(): void}} call `heard()` on every message, `stop()` once closed
 */
function keepAlive(ws, { onSilent, unref = false } = {}) {
  let heard = true
  const timer = setInterval(() => {
    if (!heard) {
      if (onSilent) onSilent()
      ws.terminate()
      return
    }
    heard = false
    if (ws.readyState === WebSocket.OPEN) ws.send('ping')
  }, PING_MS)
  if (unref) timer.unref()
  return {
    heard() {
      heard = true
    },
    stop() {
      clearInterval(timer)
    },
  }
}

class Feed {
  #owner
  #core
  #log
  #target
  #ws = null
  #attempt = 0
  #timer = null
  /** The open socket's keepAlive. */
  #alive = null
  #closed = false
  /** Resolves once the first snapshot was applied. */
  ready
  /** Resolves once the first snapshot was applied, or the first attempt failed, or after a wait. */
  settled

  constructor(owner, core, log, target) {
    this.#owner = owner
    this.#core = core
    this.#log = log
    this.#target = target
    let markReady
    this.ready = new Promise((resolve) => {
      markReady = resolve
    })
    let markSettled
    this.settled = new Promise((resolve) => {
      markSettled = resolve
    })
    this._markSettled = () => {
      this.isSettled = true
      markSettled()
    }
    this._markReady = () => {
      markReady()
      this._markSettled()
    }
    setTimeout(this._markSettled, FIRST_SNAPSHOT_WAIT_MS).unref()
  }

  get service() {
    return this.#target.service
  }

  /** Whether `settled` has resolved (checked without awaiting). */
  isSettled = false

  open() {
    if (this.#closed) return
    const target = this.#target
    const headers = target.token ? { authorization: `Bearer ${target.token}` } : {}
    const ws = new WebSocket(target.url, { headers, handshakeTimeout: 10_000 })
    this.#ws = ws
    let refused = false
    ws.on('open', () => {
      if (ws._socket && typeof ws._socket.unref === 'function') ws._socket.unref()
      this.#attempt = 0
      this.#alive = keepAlive(ws, {
        onSilent: () => this.#log('feed %s silent for %dms: reconnecting', target.service, PING_MS),
        unref: true,
      })
      this.#log('feed %s open', target.service)
    })
    ws.on('unexpected-response', (request, response) => {
      refused = response.statusCode >= 400 && response.statusCode < 500 && response.statusCode !== 429
      this.#log('feed %s refused: %d', target.service, response.statusCode)
      response.resume()
      request.destroy()
      ws.terminate()
    })
    ws.on('message', (data) => {
      this.#alive.heard()
      let service
      try {
        service = this.#core.feedMessage(data.toString())
      } catch (error) {
        this.#log('feed %s: %s', target.service, error.message)
        ws.terminate()
        return
      }
      if (service) {
        this._markReady()
        this.#owner._changed(service)
      }
    })
    ws.on('error', (error) => this.#log('feed %s error: %s', target.service, error.message))
    ws.on('close', () => {
      this._markSettled()
      if (this.#alive) this.#alive.stop()
      if (this.#ws === ws) this.#ws = null
      // The cache's HTTP policy takes over until the feed is back.
      this.#core.feedLost(target.service)
      if (this.#closed) return
      const delay = refused ? REFUSED_RETRY_MS : this.#core.retryDelay(this.#attempt++, RECONNECT_MAX_MS)
      this.#timer = setTimeout(() => this.open(), delay)
      this.#timer.unref()
    })
  }

  close() {
    this.#closed = true
    clearTimeout(this.#timer)
    if (this.#alive) this.#alive.stop()
    if (this.#ws) {
      this.#ws.terminate()
      this.#ws = null
    }
    this.#core.feedLost(this.#target.service)
  }
}

class Feeds {
  #core
  #log
  #enabled
  #feeds = new Map()
  /** service -> Set of watchers {slot, listener, last, ready} */
  #watchers = new Map()
  #pollers = new Set()
  #closed = false

  /**
   * @param core the wasm Client
   * @param log debug logger
   * @param enabled whether feeds keep the cache (false: the cache polls over HTTP)
   */
  constructor(core, log, enabled) {
    this.#core = core
    this.#log = log
    this.#enabled = enabled && !core.memory
  }

  /** Opens the feed of `name` (a service or package name) if none is open; returns the feed. */
  want(name) {
    if (!this.#enabled || this.#closed) return undefined
    let target
    try {
      target = this.#core.feedTarget(String(name))
    } catch {
      return undefined // an invalid name: the call that uses it reports that
    }
    if (!target) return undefined
    let feed = this.#feeds.get(target.service)
    if (feed === undefined) {
      feed = new Feed(this, this.#core, this.#log, target)
      this.#feeds.set(target.service, feed)
      feed.open()
    }
    return feed
  }

  /**
   * Opens the feeds of every name of `dependencies` (`{name: range}`) except mocked ones;
   * returns the promise that they settled (see `settled`), or undefined when none has to.
   */
  wantAll(dependencies, mocks) {
    if (!this.#enabled || dependencies === null || typeof dependencies !== 'object') return undefined
    let waits
    for (const name of Object.keys(dependencies)) {
      if (mocks && typeof mocks === 'object' && Object.prototype.hasOwnProperty.call(mocks, name)) continue
      const wait = this.settled(name)
      if (wait) (waits ??= []).push(wait)
    }
    return waits && Promise.all(waits)
  }

  /**
   * Opens the feed of `name` if needed; returns a promise that resolves once its first snapshot
   * is in (or its first attempt failed, or FIRST_SNAPSHOT_WAIT_MS passed), or undefined when
   * there is nothing to wait for. Lookups that would ask over HTTP wait for it first, so the
   * answer comes from the service's object and sees every write, socket leases' included.
   */
  settled(name) {
    const feed = this.want(name)
    return feed && !feed.isSettled ? feed.settled : undefined
  }

  /** A feed moved `service`'s membership: tell its watchers. */
  _changed(service) {
    const watchers = this.#watchers.get(service)
    if (watchers) for (const watcher of watchers) this.#deliver(watcher)
  }

  async #deliver(watcher) {
    let list
    try {
      list = await this.#core.instances(watcher.slot)
    } catch (error) {
      this.#log('watch %s: %s', watcher.service, error.message)
      return
    }
    if (!watcher.active) return
    const text = JSON.stringify(list)
    if (text === watcher.last) return
    watcher.last = text
    try {
      watcher.listener(list)
    } catch (error) {
      this.#log('watch %s: listener threw: %s', watcher.service, error && error.message)
      process.nextTick(() => {
        throw error
      })
    }
  }

  /**
   * Calls `listener(instances)` with the instances of `slot` (of `name`) now and whenever they
   * change; returns the unsubscribe function.
   */
  watch(name, slot, listener) {
    const watcher = { service: String(name), slot, listener, last: undefined, active: true }
    const feed = this.want(name)
    if (feed) {
      const service = feed.service
      watcher.service = service
      let set = this.#watchers.get(service)
      if (!set) this.#watchers.set(service, (set = new Set()))
      set.add(watcher)
      // The first answer once the feed's snapshot is in (at once if it is).
      feed.ready.then(() => {
        if (watcher.active) this.#deliver(watcher)
      })
      return () => {
        watcher.active = false
        set.delete(watcher)
      }
    }
    // No feed (memory: mode, or feeds turned off): poll.
    this.#deliver(watcher)
    const poller = setInterval(() => this.#deliver(watcher), MEMORY_POLL_MS)
    poller.unref()
    this.#pollers.add(poller)
    return () => {
      watcher.active = false
      clearInterval(poller)
      this.#pollers.delete(poller)
    }
  }

  /** Services with an open feed socket (or one being opened). */
  get services() {
    return [...this.#feeds.keys()]
  }

  close() {
    this.#closed = true
    for (const feed of this.#feeds.values()) feed.close()
    this.#feeds.clear()
    for (const poller of this.#pollers) clearInterval(poller)
    this.#pollers.clear()
    for (const set of this.#watchers.values()) for (const w of set) w.active = false
    this.#watchers.clear()
  }
}

module.exports = { Feeds, MEMORY_POLL_MS, keepAlive }
