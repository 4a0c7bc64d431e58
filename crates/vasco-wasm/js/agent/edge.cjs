'use strict'
// The agent's links to the edge registry: one WebSocket lease per registered service
// (GET /v1/services/{name}/{version}/instances/{id}/lease; HTTP PUT renewals where the registry
// refuses WebSockets) and one change feed per service the agent was asked about
// (GET /v1/services/{name}/watch; blocking queries, GET /v1/services/{name}?all&index=&wait=,
// where it refuses WebSockets), kept in the wasm Agent's local copy. Every socket reconnects
// with the core's backoff, capped at RECONNECT_MAX_MS, so that the agent is back in step within
// about a second of the registry's return. What each message means is the wasm Agent's
// (leaseReply, applyFeed); this file owns sockets and timers.

const WebSocket = require('ws')
const wasm = require('../wasm/vasco_wasm.js')
const { keepAlive } = require('../feed.cjs')

/** The longest wait between two reconnects (the core's full-jitter backoff from 100 ms). */
const RECONNECT_MAX_MS = 1_000
/** How long a reply on a lease socket (or an HTTP call) may take. */
const REPLY_TIMEOUT_MS = 10_000
/** How long a first read of a service waits for its feed's snapshot. */
const FIRST_SNAPSHOT_WAIT_MS = 2_000
/** The wait of a blocking query when the registry refuses WebSockets (the edge holds at most 60 s). */
const BLOCKING_WAIT_S = 30

function wsUrl(base, path) {
  return base.replace(/^http/, 'ws') + path
}

/** A lease held for one registration (by Consul service ID). */
class Lease {
  #link
  #core
  #log
  #ws = null
  #mode = 'ws'
  #timer = null
  /** The open socket's keepAlive (pings every 15 s; a silent socket is dropped). */
  #alive = null
  #attempt = 0
  #waiters = []
  #stopped = false
  #held = false
  #pendingStatus = null
  /** Callers waiting for the outcome of a registration: {held} | {refused: {status, message}} | {offline}. */
  #firsts = []

  constructor(link, id, path, renews) {
    this.#link = link
    this.#core = link.core
    this.#log = link.log
    this.id = id
    this.path = path
    this.renews = renews
  }

  /** Whether the registry holds the lease on an open connection now. */
  get connected() {
    return this.#held && (this.#mode === 'http' || (this.#ws !== null && this.#ws.readyState === WebSocket.OPEN))
  }

  /**
   * Registers (again): resolves {held: true}, {refused: {status, message}} (a 4xx from the
   * registry) or {offline: true} (unreachable: the lease keeps trying in the background).
   */
  register() {
    this.#stopped = false
    return new Promise((resolve) => {
      this.#firsts.push(resolve)
      if (this.#mode === 'http') {
        this.#httpRegister()
      } else if (this.#ws && this.#ws.readyState === WebSocket.OPEN) {
        this.#sendRegister()
      } else if (!this.#ws) {
        this.#open()
      }
    })
  }

  #settleFirst(outcome) {
    for (const resolve of this.#firsts.splice(0)) resolve(outcome)
  }

  #open() {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    const ws = new WebSocket(wsUrl(this.#link.base, `${this.path}/lease`), {
      headers: this.#link.headers(),
      handshakeTimeout: REPLY_TIMEOUT_MS,
    })
    this.#ws = ws
    this.#held = false
    let refusedStatus = 0
    ws.on('open', () => {
      this.#attempt = 0
      this.#link.contact()
      this.#alive = keepAlive(ws, { onSilent: () => this.#log('lease %s silent: reconnecting', this.id) })
      this.#sendRegister()
    })
    ws.on('unexpected-response', (request, response) => {
      refusedStatus = response.statusCode
      response.resume()
      request.destroy()
      ws.terminate()
    })
    ws.on('message', (data) => this.#message(ws, data.toString()))
    ws.on('error', (error) => this.#log('lease %s: %s', this.id, error.message))
    ws.on('close', (code) => this.#closed(ws, code, refusedStatus))
  }

  #sendRegister() {
    let body
    try {
      body = JSON.parse(this.#core.registrationBody(this.id))
    } catch {
      return // deregistered meanwhile
    }
    this.#send({ type: 'register', ...body }).then((reply) => this.#afterRegister(reply))
  }

  #afterRegister(reply) {
    if (!reply) return
    if (reply.step === 'held') {
      this.#settleFirst({ held: true })
      if (this.#pendingStatus) {
        const pending = this.#pendingStatus
        this.#pendingStatus = null
        this.status(pending)
      }
      this.#scheduleRenew()
    } else if (reply.step === 'refused') {
      this.#log('lease %s refused: %d %s', this.id, reply.status, reply.message)
      if (reply.status >= 400 && reply.status < 500 && reply.status !== 429) {
        this.#settleFirst({ refused: { status: reply.status, message: reply.message } })
      }
      this.#retryLater()
    }
  }

  #scheduleRenew() {
    clearTimeout(this.#timer)
    if (!this.renews || this.#stopped) return
    this.#timer = setTimeout(() => this.#renew(), wasm.heartbeatPeriod(this.#core.leaseMs))
  }

  async #renew() {
    if (this.#stopped) return
    if (this.#mode === 'http') return this.#httpRegister()
    const reply = await this.#send({ type: 'renew' })
    if (!reply) return
    if (reply.step === 'held') this.#scheduleRenew()
    else if (reply.step === 'register') this.#sendRegister()
    else if (reply.step === 'refused') this.#retryLater()
  }

  /** Sends a message and resolves the wasm Agent's reading of its reply (null when none came). */
  #send(message) {
    const ws = this.#ws
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve(null)
    return new Promise((resolve) => {
      const waiter = { resolve, timer: null }
      waiter.timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        this.#log('lease %s: no reply to %s', this.id, message.type)
        resolve(null)
        ws.terminate()
      }, REPLY_TIMEOUT_MS)
      this.#waiters.push(waiter)
      ws.send(JSON.stringify(message))
    })
  }

  #message(ws, text) {
    if (ws !== this.#ws) return
    this.#alive.heard()
    this.#link.contact()
    if (text === 'pong') return
    const reply = this.#core.leaseReply(this.id, text)
    if (reply.step === 'held') this.#held = true
    if (reply.step === 'ended') {
      // The registry ended the lease (it lapsed); the socket closes next (4001).
      this.#held = false
      this.ended = true
      return
    }
    let type
    try {
      type = JSON.parse(text).type
    } catch {
      type = undefined
    }
    if (['registered', 'renewed', 'status', 'deregistered', 'error'].includes(type)) {
      const waiter = this.#waiters.shift()
      if (waiter) {
        clearTimeout(waiter.timer)
        waiter.resolve(reply)
      }
    }
  }

  #closed(ws, code, refusedStatus) {
    if (this.#alive) this.#alive.stop()
    if (ws !== this.#ws) return
    this.#ws = null
    this.#held = false
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.resolve(null)
    }
    this.#core.leaseLost(this.id)
    if (this.#stopped) return
    if (refusedStatus >= 400 && refusedStatus < 500 && refusedStatus !== 401 && refusedStatus !== 429) {
      // No WebSocket leases on this registry: HTTP renewals from now on.
      this.#log('lease %s: upgrade refused (%d); renewing over HTTP', this.id, refusedStatus)
      this.#mode = 'http'
      this.#httpRegister()
      return
    }
    if (this.ended || code === 4001) {
      this.ended = false
      this.#link.onLeaseEnded(this)
      if (this.#stopped) return
    }
    if (refusedStatus === 401) {
      this.#settleFirst({ refused: { status: 403, message: 'the registry refused the token (set VASCO_TOKEN)' } })
    } else {
      this.#settleFirst({ offline: true })
    }
    this.#retryLater()
  }

  #retryLater() {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    const delay = this.#link.backoff.delay(this.#attempt++)
    this.#timer = setTimeout(() => {
      if (this.#mode === 'http') this.#httpRegister()
      else if (this.#ws && this.#ws.readyState === WebSocket.OPEN) this.#sendRegister()
      else if (!this.#ws) this.#open()
    }, delay)
  }

  async #httpRegister() {
    if (this.#stopped) return
    let body
    try {
      body = this.#core.registrationBody(this.id)
    } catch {
      return
    }
    const answer = await this.#link.call('PUT', this.path, body)
    if (this.#stopped) return
    if (answer.status === 200) {
      this.#held = true
      this.#attempt = 0
      this.#core.leaseReply(this.id, JSON.stringify({ type: 'registered', instance: JSON.parse(answer.body) }))
      this.#afterRegister({ step: 'held' })
    } else if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
      this.#held = false
      this.#afterRegister({ step: 'refused', status: answer.status === 401 ? 403 : answer.status, message: errorMessage(answer) })
    } else {
      this.#held = false
      this.#core.leaseLost(this.id)
      this.#settleFirst({ offline: true })
      this.#retryLater()
    }
  }

  /**
   * Sends a status body (JSON text: a check result, a status set, `{"maintenance": false}`);
   * resolves true when the registry took it. While the lease is not held, the latest one waits
   * for the next registration.
   */
  async status(bodyText) {
    const body = JSON.parse(bodyText)
    if (!this.connected) {
      this.#pendingStatus = bodyText
      return false
    }
    if (this.#mode === 'http') {
      const answer = await this.#link.call('PUT', `${this.path}/status`, bodyText)
      if (answer.status === 200) {
        this.#core.leaseReply(this.id, JSON.stringify({ type: 'status', instance: JSON.parse(answer.body) }))
        return true
      }
      if (answer.status === 404) {
        if (!this.renews) this.#link.onLeaseEnded(this)
        else this.#httpRegister()
      }
      return false
    }
    const reply = await this.#send({ type: 'status', ...body })
    if (reply && reply.step === 'register') {
      this.#pendingStatus = bodyText
      this.#sendRegister()
    }
    return Boolean(reply && reply.step === 'held')
  }

  /** Deregisters (over the socket when it holds the lease, else with DELETE); bounded. */
  async deregister() {
    this.#stopped = true
    clearTimeout(this.#timer)
    const ws = this.#ws
    if (this.#mode === 'ws' && ws && ws.readyState === WebSocket.OPEN && this.#held) {
      const done = new Promise((resolve) => ws.once('close', resolve))
      this.#send({ type: 'deregister' })
      const timer = setTimeout(() => ws.terminate(), 3_000)
      await done
      clearTimeout(timer)
    } else {
      if (ws) ws.terminate()
      await this.#link.call('DELETE', this.path)
    }
    this.#ws = null
    this.#held = false
  }

  /** Stops without deregistering (closing the socket deregisters at the registry anyway). */
  close() {
    this.#stopped = true
    clearTimeout(this.#timer)
    if (this.#alive) this.#alive.stop()
    if (this.#ws) this.#ws.terminate()
    this.#ws = null
    this.#settleFirst({ offline: true })
  }
}

function errorMessage(answer) {
  try {
    const body = JSON.parse(answer.body)
    if (body && body.error && body.error.message) return body.error.message
  } catch {
    // plain text
  }
  return String(answer.body || `status ${answer.status}`).slice(0, 500)
}

/** One service's change feed, kept in the wasm Agent's local copy. */
class Feed {
  #link
  #ws = null
  #timer = null
  /** The open socket's keepAlive. */
  #alive = null
  #attempt = 0
  #closed = false
  /** Whether the copy is current: the socket is open and its snapshot was applied. */
  live = false
  /** When the copy stopped being current (ms), or 0. */
  lostAt = 0
  /** Resolves once the first snapshot was applied, or the first attempt failed, or after a wait. */
  settled

  constructor(link, service) {
    this.#link = link
    this.service = service
    let settle
    this.settled = new Promise((resolve) => {
      settle = resolve
    })
    this._settle = settle
    setTimeout(settle, FIRST_SNAPSHOT_WAIT_MS).unref()
  }

  open() {
    if (this.#closed) return
    const ws = new WebSocket(wsUrl(this.#link.base, `/v1/services/${encodeURIComponent(this.service)}/watch`), {
      headers: this.#link.headers(),
      handshakeTimeout: REPLY_TIMEOUT_MS,
    })
    this.#ws = ws
    ws.on('open', () => {
      this.#attempt = 0
      this.#alive = keepAlive(ws)
    })
    ws.on('unexpected-response', (request, response) => {
      const status = response.statusCode
      this.#link.log('feed %s refused: %d', this.service, status)
      response.resume()
      request.destroy()
      if (status >= 400 && status < 500 && status !== 401 && status !== 429) {
        // No change feeds on this registry (or a proxy refusing upgrades): blocking queries.
        this.#polling = true
      }
      ws.terminate()
    })
    ws.on('message', (data) => {
      this.#alive.heard()
      this.#link.contact()
      const text = data.toString()
      if (text === 'pong') return
      const changed = this.#link.core.applyFeed(text)
      if (!this.live && text.includes('"snapshot"')) {
        this.live = true
        this.lostAt = 0
        this._settle()
        this.#link.onFeedLive(this.service)
      }
      if (changed) this.#link.onChange(changed)
    })
    ws.on('error', (error) => this.#link.log('feed %s: %s', this.service, error.message))
    ws.on('close', () => {
      if (this.#alive) this.#alive.stop()
      if (this.#ws === ws) this.#ws = null
      if (this.live) this.lostAt = Date.now()
      else if (!this.lostAt) this.lostAt = Date.now()
      this.live = false
      if (this.#closed) return
      if (this.#polling) {
        this.#poll()
        return
      }
      this._settle()
      this.#timer = setTimeout(() => this.open(), this.#link.backoff.delay(this.#attempt++))
    })
  }

  #polling = false
  #abort = new AbortController()

  /** The copy kept by blocking queries: each answer is applied as a snapshot. */
  async #poll() {
    let index = 0
    while (!this.#closed) {
      const path = `/v1/services/${encodeURIComponent(this.service)}?all&index=${index}&wait=${BLOCKING_WAIT_S}s`
      const answer = await this.#link.call('GET', path, undefined, {}, (BLOCKING_WAIT_S + 10) * 1000, this.#abort.signal)
      if (this.#closed) return
      let snapshot = null
      if (answer.status === 200) {
        try {
          const next = Number(answer.headers.get('x-vasco-index')) || 0
          const { instances } = JSON.parse(answer.body)
          snapshot = { type: 'snapshot', service: this.service, index: next, instances }
          index = next
        } catch {
          snapshot = null
        }
      }
      if (!snapshot) {
        if (this.live) this.lostAt = Date.now()
        this.live = false
        this._settle()
        await new Promise((resolve) => {
          this.#timer = setTimeout(resolve, this.#link.backoff.delay(this.#attempt++))
        })
        continue
      }
      this.#attempt = 0
      const changed = this.#link.core.applyFeed(JSON.stringify(snapshot))
      if (!this.live) {
        this.live = true
        this.lostAt = 0
        this._settle()
        this.#link.onFeedLive(this.service)
      }
      if (changed) this.#link.onChange(changed)
    }
  }

  close() {
    this.#closed = true
    this.#abort.abort()
    clearTimeout(this.#timer)
    if (this.#alive) this.#alive.stop()
    if (this.#ws) this.#ws.terminate()
    this.#ws = null
    this._settle()
  }
}

/** The registry: its base URL and token, the agent's leases and feeds. */
class EdgeLink {
  constructor({ base, token, core, log, onChange, onLeaseEnded, onFeedLive }) {
    this.base = base
    this.token = token
    this.core = core
    this.log = log
    this.onChange = onChange
    this.onLeaseEnded = onLeaseEnded
    this.onFeedLive = onFeedLive || (() => {})
    this.backoff = new wasm.Backoff({ baseMs: 100, maxMs: RECONNECT_MAX_MS })
    this.feeds = new Map()
    this.lastContact = 0
  }

  headers() {
    return this.token ? { authorization: `Bearer ${this.token}` } : {}
  }

  /** Something was heard from the registry just now. */
  contact() {
    this.lastContact = Date.now()
  }

  /** One HTTP call to the registry: {status, body, headers} (status 0 when it could not be reached). */
  async call(method, path, body, extraHeaders, timeoutMs = REPLY_TIMEOUT_MS, abort = undefined) {
    const headers = { accept: 'application/json', ...this.headers(), ...extraHeaders }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = abort ? AbortSignal.any([abort, timeout]) : timeout
    try {
      const response = await fetch(this.base + path, { method, headers, body, signal })
      const text = await response.text()
      this.contact()
      return { status: response.status, body: text, headers: response.headers }
    } catch (error) {
      this.log('%s %s failed: %s', method, path, (error.cause && error.cause.code) || error.message)
      return { status: 0, body: '' }
    }
  }

  lease(id, path, renews) {
    return new Lease(this, id, path, renews)
  }

  /** The feed of `service`, opened if it is not yet. */
  feed(service) {
    let feed = this.feeds.get(service)
    if (!feed) {
      feed = new Feed(this, service)
      this.feeds.set(service, feed)
      feed.open()
    }
    return feed
  }

  close() {
    for (const feed of this.feeds.values()) feed.close()
    this.feeds.clear()
  }
}

module.exports = { EdgeLink, RECONNECT_MAX_MS }
