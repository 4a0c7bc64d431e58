'use strict'
// A registration's lease held on a WebSocket (GET /v1/services/{name}/{version}/instances/{id}/lease):
// register once, renew at the core's heartbeat period (the Registration's timer decides when),
// deregister on the way out. Closing the socket deregisters the instance at once on the
// registry's side, so a process that dies without a signal (SIGKILL, a crash) disappears as
// soon as its connection drops.
//
// This file owns the socket; what each reply means (keep renewing, register again, refused,
// lease ended) is the wasm core's `leaseStep`. When the socket cannot be opened (no route on an
// older registry, a proxy refusing upgrades, a network error) the beat falls back to the HTTP
// PUT renewal; a registry that refused the upgrade with a 4xx keeps the HTTP path for good.

const WebSocket = require('ws')

/** Lets the process exit while `ws` is open. */
function unref(ws) {
  if (ws._socket && typeof ws._socket.unref === 'function') ws._socket.unref()
}

/** Keeps the process alive while `ws` is open. */
function ref(ws) {
  if (ws._socket && typeof ws._socket.ref === 'function') ws._socket.ref()
}

class SocketLease {
  #core
  #spec
  #log
  #timeoutMs
  #onLost
  #ws = null
  /** Resolves when #ws is open, rejects when it failed to open. */
  #opening = null
  /** Whether the registry has the lease on this socket (after `registered`). */
  #held = false
  /** The pending reply: {resolve, reject, timer}. */
  #waiting = null
  /** Exchanges go one at a time (a beat, a status update): each waits for the one before. */
  #queue = Promise.resolve()
  #stopped = false
  /** Set when the registry refused the upgrade (4xx): HTTP renewals only from then on. */
  #unsupported = false
  /** Whether the open socket keeps the process alive (the original API's registrations). */
  #keepAlive

  /**
   * @param core the wasm Client
   * @param spec the wasm Registration
   * @param log debug logger
   * @param timeoutMs how long a reply may take before the beat falls back to HTTP
   * @param onLost called when the socket dropped or the registry ended the lease while it was
   *   held (the registry has deregistered the instance: register again soon)
   * @param keepAlive whether the socket keeps the process alive while the lease is held (the
   *   original API's, as its heartbeat timer does); otherwise it is unreferenced
   */
  constructor(core, spec, log, timeoutMs, onLost, keepAlive = false) {
    this.#keepAlive = keepAlive
    this.#core = core
    this.#spec = spec
    this.#log = log
    this.#timeoutMs = timeoutMs
    this.#onLost = onLost
  }

  /** Whether the lease is held on an open socket now. */
  get connected() {
    return this.#held && this.#ws !== null && this.#ws.readyState === WebSocket.OPEN
  }

  /** Whether renewals go over HTTP for good (the registry has no WebSocket leases). */
  get unsupported() {
    return this.#unsupported
  }

  /**
   * One beat: registers on a new socket, or renews on the open one; resolves to the stored
   * instance. Falls back to the HTTP PUT (`core.register`) when the socket cannot be used.
   */
  async beat() {
    if (this.#unsupported) return this.#core.register(this.#spec)
    try {
      await this.#open()
    } catch (error) {
      this.#log('%s: lease socket unavailable (%s); renewing over HTTP', this.#spec.name, error.message)
      return this.#core.register(this.#spec)
    }
    try {
      return await this.#exchange(() => (this.#held ? '{"type":"renew"}' : this.#target.register))
    } catch (error) {
      if (error.code === 'lease_lost' || error.code === 'timeout') {
        // The socket died under the beat: the HTTP renewal keeps the lease meanwhile.
        return this.#core.register(this.#spec)
      }
      throw error
    }
  }

  get #target() {
    return this.#core.leaseTarget(this.#spec)
  }

  #open() {
    if (this.#ws !== null && this.#opening) return this.#opening
    const target = this.#target
    const headers = target.token ? { authorization: `Bearer ${target.token}` } : {}
    const ws = new WebSocket(target.url, { headers, handshakeTimeout: this.#timeoutMs })
    this.#ws = ws
    this.#held = false
    this.#opening = new Promise((resolve, reject) => {
      ws.once('open', () => {
        // Like the heartbeat timers, the lease does not keep the process alive by itself,
        // except for the original API, whose registrations do.
        if (!this.#keepAlive) unref(ws)
        resolve()
      })
      ws.once('unexpected-response', (request, response) => {
        const status = response.statusCode
        if (status >= 400 && status < 500 && status !== 401 && status !== 429) this.#unsupported = true
        response.resume()
        request.destroy()
        this.#drop(ws)
        reject(Object.assign(new Error(`upgrade refused with status ${status}`), { code: 'upgrade_refused' }))
      })
      ws.once('error', (error) => {
        this.#drop(ws)
        reject(error)
      })
    })
    // The 'error' listener above is removed once it fires; keep one for later errors.
    ws.on('error', (error) => this.#log('%s: lease socket error: %s', this.#spec.name, error.message))
    ws.on('message', (data) => this.#message(ws, data.toString()))
    ws.on('close', (code) => this.#closed(ws, code))
    return this.#opening
  }

  /**
   * Sends a status set or check result (`{"type":"status", ...}`) on the socket that holds the
   * lease; resolves to the stored instance. Rejects (code `lease_lost`) when no socket holds it
   * now, so the caller uses `PUT .../status` instead.
   */
  status(message) {
    if (!this.connected) return Promise.reject(Object.assign(new Error('no lease socket'), { code: 'lease_lost' }))
    return this.#exchange(() => message)
  }

  /** Sends the message `text()` once the exchanges before it are over; resolves to the reply's instance. */
  #exchange(text) {
    const run = () => this.#exchangeNow(text())
    const next = this.#queue.then(run, run)
    this.#queue = next.catch(() => {})
    return next
  }

  #exchangeNow(text) {
    const ws = this.#ws
    if (ws === null || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(Object.assign(new Error('lease socket closed'), { code: 'lease_lost' }))
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = null
        this.#drop(ws)
        reject(Object.assign(new Error('no reply on the lease socket'), { code: 'timeout' }))
      }, this.#timeoutMs)
      // A request in flight keeps the process alive until it is answered, as a fetch does.
      ref(ws)
      this.#waiting = { resolve, reject, timer, text, ws }
      ws.send(text)
    })
  }

  #settle(outcome, value) {
    const waiting = this.#waiting
    if (!waiting) return
    this.#waiting = null
    clearTimeout(waiting.timer)
    if (!this.#keepAlive) unref(waiting.ws)
    waiting[outcome](value)
  }

  #message(ws, text) {
    if (ws !== this.#ws) return
    const step = this.#core.leaseStep(text)
    switch (step.step) {
      case 'held':
        this.#held = true
        this.#settle('resolve', step.instance)
        break
      case 'register':
        // The registry lost the lease between two renewals: register again on this socket.
        this.#held = false
        if (this.#waiting) {
          this.#waiting.text = this.#target.register
          ws.send(this.#waiting.text)
        }
        break
      case 'refused':
        this.#settle('reject', step.error)
        break
      case 'ended':
        // The lease lapsed on the registry's side; the socket closes next (code 4001).
        this.#held = false
        break
      default:
        break
    }
  }

  #closed(ws, code) {
    if (ws !== this.#ws) return
    const wasHeld = this.#held
    this.#ws = null
    this.#opening = null
    this.#held = false
    this.#settle('reject', Object.assign(new Error(`lease socket closed (${code})`), { code: 'lease_lost' }))
    if (this.#stopped) return
    this.#log('%s: lease socket closed (%d)', this.#spec.name, code)
    if (wasHeld) this.#onLost()
  }

  #drop(ws) {
    if (ws === this.#ws) {
      this.#ws = null
      this.#opening = null
      this.#held = false
    }
    try {
      ws.terminate()
    } catch {
      // already closed
    }
  }

  /**
   * Stops renewing without deregistering: the socket stays open (unreferenced) and the lease
   * lapses at its ttl, when the registry closes the socket.
   */
  stop() {
    this.#stopped = true
    if (this.#ws) unref(this.#ws)
  }

  /**
   * Deregisters: over the socket when it holds the lease (waiting for the answer, at most the
   * timeout), else with the HTTP DELETE. Resolves to whether the socket did it.
   */
  async deregister() {
    this.#stopped = true
    const ws = this.#ws
    if (this.connected) {
      try {
        await this.#exchangeDeregister(ws)
        return true
      } catch (error) {
        this.#log('%s: deregister over the socket failed (%s); using HTTP', this.#spec.name, error.message)
      } finally {
        this.#drop(ws)
      }
    } else if (ws) {
      this.#drop(ws)
    }
    await this.#core.deregister(this.#spec)
    return false
  }

  #exchangeDeregister(ws) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply to deregister')), this.#timeoutMs)
      timer.unref()
      const done = (data) => {
        let message
        try {
          message = JSON.parse(data.toString())
        } catch {
          return
        }
        if (message.type === 'deregistered' || message.type === 'closed') {
          clearTimeout(timer)
          ws.off('message', done)
          resolve()
        } else if (message.type === 'error') {
          clearTimeout(timer)
          ws.off('message', done)
          reject(new Error(message.error && message.error.message))
        }
      }
      ws.on('message', done)
      ws.once('close', () => {
        clearTimeout(timer)
        // A close after the request deregisters too (the registry drops the lease with it).
        resolve()
      })
      ws.send('{"type":"deregister"}')
    })
  }
}

module.exports = { SocketLease }
