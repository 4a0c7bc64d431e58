'use strict'
// The JavaScript layer of the npm package `vasco`. Everything that decides something (names,
// versions, leases, resolution, the cache, selection, outlier ejection, backoff) runs in the
// wasm module compiled from Rust; this file owns what only JavaScript can do: fetch, timers,
// signals, event emitters, the callback API and debug logging.

const { EventEmitter } = require('node:events')
const { format } = require('node:util')
const wasm = require('./wasm/vasco_wasm.js')
const { Feeds } = require('./feed.cjs')
const { SocketLease } = require('./lease.cjs')

// ---------------------------------------------------------------------------------------------
// Debug logging through the `debug` package, as the original module did: DEBUG=vasco (or
// vasco*, *, ...) turns it on.
const debug = require('debug')

const log = debug('vasco')

// ---------------------------------------------------------------------------------------------
// Errors: every error is an Error with a stable `code` (see index.d.ts for the list).

function vascoError(code, message, extra) {
  const error = new Error(message)
  error.name = 'VascoError'
  error.code = code
  if (extra) Object.assign(error, extra)
  return error
}

// ---------------------------------------------------------------------------------------------
// HTTP: the wasm client hands each registry call to `send` and reads {status, body} back;
// status 0 means the registry could not be reached (the client then serves from its cache).

/** Why a fetch failed, in words that say what to check. */
function describeFetchError(error, url) {
  if (error && error.name === 'TimeoutError') return 'timed out'
  const cause = error && error.cause
  const code = cause && cause.code
  const host = (() => {
    try {
      return new URL(url).host
    } catch {
      return url
    }
  })()
  if (cause && cause.message === 'bad port') {
    return `bad port: fetch refuses to connect to port ${new URL(url).port} (a port the Fetch standard blocks); run the registry on another port`
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `${code}: cannot resolve the host of ${host}; check VASCO_URL`
  if (code === 'ECONNREFUSED') return `ECONNREFUSED: nothing listens at ${host}; is the registry running? (VASCO_URL)`
  if (typeof code === 'string' && code.startsWith('HPE_')) {
    return `${code}: the server at ${host} does not answer HTTP (a Redis server? VASCO_URL must be the Vasco registry's http(s) URL)`
  }
  if (cause && (code || cause.message)) return [code, cause.message].filter(Boolean).join(': ')
  return (error && error.message) || String(error)
}

function makeSend(timeoutMs) {
  return async function send(request) {
    const headers = { accept: 'application/json' }
    if (request.body !== undefined) headers['content-type'] = 'application/json'
    if (request.token) headers.authorization = `Bearer ${request.token}`
    const started = Date.now()
    try {
      const response = await fetch(request.url, {
        method: request.method,
        headers,
        body: request.body,
        signal: AbortSignal.timeout(timeoutMs),
      })
      const body = await response.text()
      log('%s %s -> %d (%dms)', request.method, request.url, response.status, Date.now() - started)
      // x-vasco-now: the registry's clock, against which leases end.
      return { status: response.status, body, now: response.headers.get('x-vasco-now') ?? undefined }
    } catch (error) {
      const reason = describeFetchError(error, request.url)
      log('%s %s failed: %s', request.method, request.url, reason)
      return { status: 0, body: reason }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Signals: on SIGINT/SIGTERM, registrations that asked for it are drained (set to maintenance,
// so consumers stop picking them at once, and kept renewing for their drainMs while requests
// in flight finish) and deregistered before the process exits with the signal's default
// behaviour (unless the application has its own handler, which then decides when to exit).
// A second signal during the drain finds no handler of ours and ends the process at once.

const SIGNALS = ['SIGINT', 'SIGTERM']
/** How long deregistering may take after the drain before the process exits anyway. */
const SIGNAL_DEADLINE_MS = 3000
const signalled = new Set()
let signalsInstalled = false

function onSignal(signal) {
  for (const s of SIGNALS) process.removeListener(s, onSignal)
  signalsInstalled = false
  const registrations = [...signalled]
  signalled.clear()
  const drainMs = Math.max(0, ...registrations.map((r) => r.drainMs))
  const done = (async () => {
    if (drainMs > 0) {
      log('%s: draining %d instance(s) for %d ms', signal, registrations.length, drainMs)
      await Promise.allSettled(registrations.map((r) => r._hold(r.drainMs, 'shutdown')))
    }
    log('%s: deregistering %d instance(s)', signal, registrations.length)
    await Promise.allSettled(registrations.map((r) => r.deregister()))
  })()
  // Referenced: once the lease socket closes nothing else may keep Node running, and the
  // process must live to re-raise the signal (so it ends by the signal, as without us).
  let timer
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, drainMs + SIGNAL_DEADLINE_MS)
  })
  Promise.race([done, deadline]).then(() => {
    clearTimeout(timer)
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

function watchSignals(registration) {
  signalled.add(registration)
  if (!signalsInstalled) {
    signalsInstalled = true
    for (const s of SIGNALS) process.on(s, onSignal)
  }
}

function unwatchSignals(registration) {
  signalled.delete(registration)
  if (signalled.size === 0 && signalsInstalled) {
    signalsInstalled = false
    for (const s of SIGNALS) process.removeListener(s, onSignal)
  }
}

// ---------------------------------------------------------------------------------------------
// A registration: the instance's lease kept alive by heartbeats, its dependencies kept
// resolved, and a handle to stop both.

/** How long a dependency retry waits at most (backoff from 100 ms up to this). */
const DEPENDENCY_RETRY_MAX_MS = 5000

class Registration extends EventEmitter {
  #client
  #core
  #spec
  #beatTimer = null
  #depsTimer = null
  #beatAttempt = 0
  #depsAttempt = 0
  #inflight = null
  #stopped = false
  #deregistered = null
  #keepAlive
  /** Codes already reported as a process warning (no 'error' listener); cleared on success. */
  #warned = new Set()
  /** The application's health check, run before each beat (null: none). */
  #healthCheck
  /** Set once a drain began: health checks stop, the status stays maintenance. */
  #holding = null
  #drained = null

  constructor(client, core, spec, handleSignals, leaseTimeoutMs, keepAlive = false, extras = {}) {
    super()
    // Over HTTP the lease is held on a WebSocket (HTTP PUT renewals as the fallback).
    if (leaseTimeoutMs) this.#lease = new SocketLease(core, spec, log, leaseTimeoutMs, () => this.#lost(), keepAlive)
    this.#client = client
    this.#core = core
    this.#spec = spec
    /** The service name. */
    this.name = spec.name
    /** The version, normalized. */
    this.version = spec.version
    /** The instance id within name@version. */
    this.id = spec.id
    /** The url it registered. */
    this.url = spec.url
    /** The lease in seconds. */
    this.ttl = spec.ttlMs / 1000
    /** The instance as last stored by the registry (null until the first registration). */
    this.instance = null
    /** `{name: url}` of the dependencies resolved so far. */
    this.dependencies = {}
    /** Names of dependencies without an instance yet (retried in the background). */
    this.missing = []
    this.#handleSignals = handleSignals
    this.#keepAlive = keepAlive
    this.#healthCheck = extras.healthCheck ?? null
    /** How long a SIGINT/SIGTERM drain keeps it registered in maintenance (ms; 0: none). */
    this.drainMs = spec.drainMs ?? core.drainMs
  }

  /** Its health status as the registry last answered (`passing` until registered). */
  get status() {
    return this.instance ? this.instance.status ?? 'passing' : 'passing'
  }

  #handleSignals
  #lease = null

  /** Whether the lease is held on a WebSocket right now (false: HTTP renewals, or none yet). */
  get socket() {
    return this.#lease !== null && this.#lease.connected
  }

  /** The lease socket dropped (the registry deregistered the instance): register again soon. */
  #lost() {
    if (this.#stopped) return
    this.#scheduleBeat(this.#core.retryDelay(this.#beatAttempt++, this.#period()))
  }

  /** Whether heartbeats are running. */
  get active() {
    return !this.#stopped
  }

  /**
   * A background failure: an 'error' event, or without a listener a process warning (once per
   * error code until a heartbeat succeeds again), never silence and never a crash.
   */
  #report(error) {
    log('%s@%s: %s', this.name, this.version, error.message)
    if (this.listenerCount('error') > 0) {
      this.emit('error', error)
    } else if (!this.#warned.has(error.code)) {
      this.#warned.add(error.code)
      process.emitWarning(`vasco: ${this.name}@${this.version}: ${error.message}`, { code: `VASCO_${String(error.code).toUpperCase()}` })
    }
  }

  /** The first round: resolve dependencies, register, start heartbeats. */
  async _start() {
    let dependencyError = null
    if (this.#spec.hasDependencies) {
      try {
        // The dependencies' feeds were opened by the client: answer from them when they can.
        if (this._feeds) await this._feeds
        this._feeds = undefined
        this.dependencies = await this.#core.findDependencies(this.#spec.dependencies, this.#spec.mocks)
      } catch (error) {
        if (error.code !== 'no_url' && error.code !== 'unavailable') throw error
        dependencyError = error
        this.dependencies = error.dependencies || {}
        this.missing = error.missing || []
      }
    }
    try {
      await this.#beatOnce()
    } catch (error) {
      error.registration = this
      // Refused (a missing or wrong token, a field the registry rejects): asking again the
      // same way cannot succeed, so nothing keeps running. Reported now.
      if (error.code !== 'unavailable') {
        this.stop()
        throw error
      }
      // The registry is down: keep trying in the background, report it now.
      this.#scheduleBeat(this.#core.retryDelay(this.#beatAttempt++, this.#period()))
      if (this.#handleSignals) watchSignals(this)
      if (dependencyError) this.#scheduleDependencies()
      throw error
    }
    this.#scheduleBeat(this.#core.heartbeatDelay(this.#spec.ttlMs))
    if (this.#handleSignals) watchSignals(this)
    log('registered %s@%s/%s at %s (ttl %ds)', this.name, this.version, this.id, this.url, this.ttl)
    if (dependencyError) {
      this.#scheduleDependencies()
      dependencyError.registration = this
      throw dependencyError
    }
    return this.dependencies
  }

  /** The core's heartbeat period for this lease (a third of it): the ceiling of retry delays. */
  #period() {
    return wasm.heartbeatPeriod(this.#spec.ttlMs)
  }

  async #beatOnce() {
    const pending = this.#beatAndFollow()
    this.#inflight = pending
    try {
      const instance = await pending
      this.#beatAttempt = 0
      this.#warned.clear()
      return instance
    } finally {
      if (this.#inflight === pending) this.#inflight = null
    }
  }

  /** One beat: the health check, the renewal (or registration), then what must follow it. */
  async #beatAndFollow() {
    await this.#check()
    const instance = await (this.#lease ? this.#lease.beat() : this.#core.register(this.#spec))
    this.#observe(instance)
    // The registration's status set, when its instance is new; else its latest check result,
    // when the registry's differs (a WebSocket renewal carries no body). The core decides.
    const next = this.#spec.followUp(instance)
    if (next) {
      try {
        return await this.#send(next)
      } catch (error) {
        if (!this.#stopped) this.#report(error)
      }
    }
    return this.instance
  }

  /**
   * Runs the health check (at most a heartbeat period) and records its result, which the
   * next registration body or status message carries. Not while draining.
   */
  async #check() {
    if (this.#healthCheck === null || this.#holding) return
    const limit = this.#period()
    let timer
    let outcome
    let thrown = false
    const healthCheck = this.#healthCheck
    try {
      outcome = await Promise.race([
        Promise.resolve().then(() => healthCheck()),
        new Promise((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`the health check took longer than ${limit} ms`)), limit)
          timer.unref()
        }),
      ])
    } catch (error) {
      thrown = true
      outcome = error instanceof Error ? error.message : String(error)
    } finally {
      clearTimeout(timer)
    }
    if (this.#holding) return
    const result = this.#spec.reportCheck(outcome, thrown)
    log('%s@%s: health check %s%s', this.name, this.version, result.status, result.note ? ` (${result.note})` : '')
  }

  /** Sends a status set or check result: on the lease socket when it holds the lease, else `PUT .../status`. */
  async #send(update) {
    let instance = null
    if (this.#lease && this.#lease.connected) {
      try {
        instance = await this.#lease.status(update.message)
      } catch (error) {
        log('%s: status over the lease socket failed (%s); using HTTP', this.name, error.message)
      }
    }
    if (instance === null) instance = await this.#core.setStatus(this.#spec, update)
    this.#spec.applied(instance)
    this.#observe(instance)
    return instance
  }

  /** Takes the registry's answer about the instance; emits 'status' when its status moved. */
  #observe(instance) {
    const before = this.instance ? this.status : null
    this.instance = instance
    if (before !== null && instance && instance.status !== before) {
      log('%s@%s/%s: %s -> %s', this.name, this.version, this.id, before, instance.status)
      this.emit('status', instance)
    }
  }

  /**
   * Sets the instance's health status (`passing`, `warning`, `critical` or `maintenance`, with
   * an optional reason), on the lease socket or with `PUT .../status`; resolves to the stored
   * instance. Maintenance takes it out of every consumer's picks until another status is set;
   * a health check never ends it. The status is kept: an instance registered anew (a lost
   * lease) gets it back.
   */
  async setStatus(status, reason, options) {
    if (this.#stopped) throw vascoError('closed', `setStatus: ${this.name}@${this.version}/${this.id} is no longer registered`)
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw vascoError('invalid_argument', 'options: must be an object ({by})', { field: 'options' })
    }
    const update = this.#spec.setStatus(String(status), reason ?? undefined, options?.by ?? undefined)
    // After a beat in flight (the first registration, say), so the instance exists.
    if (this.#inflight) await this.#inflight.catch(() => {})
    return this.#send(update)
  }

  /**
   * Drains the instance: sets it to maintenance (so consumers stop picking it), keeps renewing
   * its lease for `timeout` ms (default `drainMs`) while requests in flight finish, then
   * deregisters. Health checks stop. Resolves once deregistered. Idempotent.
   */
  drain(options = {}) {
    if (this.#drained) return this.#drained
    if (options === null || typeof options !== 'object') {
      return Promise.reject(vascoError('invalid_argument', 'options: must be an object ({timeout, reason})', { field: 'options' }))
    }
    const timeout = options.timeout ?? this.drainMs
    if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
      return Promise.reject(vascoError('invalid_argument', 'timeout: must be a number of milliseconds, 0 or more', { field: 'timeout' }))
    }
    this.#drained = this._hold(timeout, options.reason ?? 'drain').then(() => this.deregister())
    return this.#drained
  }

  /** The drain before deregistering: maintenance, then `ms` of renewals. */
  _hold(ms, reason) {
    if (this.#holding) return this.#holding
    this.#holding = (async () => {
      if (this.#stopped) return
      log('%s@%s/%s: draining for %d ms (%s)', this.name, this.version, this.id, ms, reason)
      try {
        await this.setStatus('maintenance', reason)
      } catch (error) {
        // Unreachable or gone: still wait, the lease is renewed meanwhile if it can be.
        this.#report(error)
      }
      this.emit('draining', ms)
      // Referenced: the drain keeps the process alive until it is over.
      if (ms > 0 && !this.#stopped) await new Promise((resolve) => setTimeout(resolve, ms))
    })()
    return this.#holding
  }

  #scheduleBeat(delay) {
    if (this.#stopped) return
    clearTimeout(this.#beatTimer)
    this.#beatTimer = setTimeout(() => this.#beat(), delay)
    // The original API's heartbeat keeps the process alive while registered, as the original
    // module's timer did; connect()'s does not (a CLI using it must be able to exit).
    if (!this.#keepAlive) this.#beatTimer.unref()
  }

  async #beat() {
    if (this.#stopped) return
    try {
      const instance = await this.#beatOnce()
      if (this.#stopped) return
      this.emit('heartbeat', instance)
      this.#scheduleBeat(this.#core.heartbeatDelay(this.#spec.ttlMs))
    } catch (error) {
      if (this.#stopped) return
      this.#report(error)
      this.#scheduleBeat(this.#core.retryDelay(this.#beatAttempt++, this.#period()))
    }
  }

  #scheduleDependencies() {
    if (this.#stopped) return
    const delay = this.#core.retryDelay(this.#depsAttempt++, DEPENDENCY_RETRY_MAX_MS)
    clearTimeout(this.#depsTimer)
    this.#depsTimer = setTimeout(() => this.#retryDependencies(), delay)
    this.#depsTimer.unref()
  }

  async #retryDependencies() {
    if (this.#stopped) return
    try {
      const urls = await this.#core.findDependencies(this.#spec.dependencies, this.#spec.mocks)
      if (this.#stopped) return
      this.dependencies = urls
      this.missing = []
      log('%s@%s: all dependencies resolved', this.name, this.version)
      this.emit('dependencies', urls)
    } catch (error) {
      if (this.#stopped) return
      if (error.code === 'no_url') {
        this.dependencies = error.dependencies || this.dependencies
        this.missing = error.missing || this.missing
      } else {
        this.#report(error)
      }
      this.#scheduleDependencies()
    }
  }

  /** Stops heartbeats and background resolution without deregistering: the lease lapses. */
  stop() {
    this.#stopped = true
    clearTimeout(this.#beatTimer)
    clearTimeout(this.#depsTimer)
    if (this.#lease) this.#lease.stop()
    unwatchSignals(this)
    this.#client._forget(this)
  }

  /** Stops heartbeats and removes the instance from the registry. Idempotent. */
  deregister() {
    if (this.#deregistered) return this.#deregistered
    this.stop()
    const inflight = this.#inflight
    this.#deregistered = (async () => {
      // A heartbeat still in flight must land before the delete, or it would re-register.
      if (inflight) await inflight.catch(() => {})
      if (this.#lease) await this.#lease.deregister()
      else await this.#core.deregister(this.#spec)
      log('deregistered %s@%s/%s', this.name, this.version, this.id)
      this.emit('deregistered')
    })()
    return this.#deregistered
  }
}

// ---------------------------------------------------------------------------------------------
// The modern API: connect() returns a client.

const DEFAULT_STRATEGY = 'weighted'
const NO_OPTIONS = Object.freeze({})
/** Keys memoized per slot and keyed strategy before the memo starts over. */
const HOT_KEYS = 4096

/**
 * Memoized picks of one slot with one keyed strategy (maglev, ring): key -> instance, valid
 * while `changes` matches the client's and until `until` (local ms), both as the wasm client
 * said (`hotUntil`): passing a string key into wasm costs more than the pick itself. Two
 * generations of at most HOT_KEYS keys each, so hot keys stay and cold ones age out; when a
 * whole generation saw fewer than one hit in eight lookups (keys that do not repeat), the memo
 * stands aside for the next 8 * HOT_KEYS picks, so random keys pay almost nothing for it.
 */
class HotKeys {
  constructor() {
    this.changes = -1
    this.until = 0
    this.young = new Map()
    this.old = new Map()
    this.lookups = 0
    this.hits = 0
    this.skip = 0
  }

  get(key) {
    if (this.skip > 0) {
      this.skip -= 1
      return undefined
    }
    this.lookups += 1
    const hit = this.young.get(key)
    if (hit !== undefined) {
      this.hits += 1
      return hit
    }
    const old = this.old.get(key)
    if (old !== undefined) {
      this.hits += 1
      this.set(key, old)
    }
    return old
  }

  set(key, value) {
    if (this.skip > 0) return
    if (this.young.size >= HOT_KEYS) {
      const cold = this.hits * 8 < this.lookups
      this.lookups = 0
      this.hits = 0
      this.old = cold ? new Map() : this.young
      this.young = new Map()
      if (cold) {
        this.skip = 8 * HOT_KEYS
        return
      }
    }
    this.young.set(key, value)
  }

  reset(changes, until) {
    this.changes = changes
    this.until = until
    this.lookups = 0
    this.hits = 0
    this.skip = 0
    if (this.young.size) this.young = new Map()
    if (this.old.size) this.old = new Map()
  }
}

function splitRange(range, options) {
  if (range !== null && typeof range === 'object') return [undefined, range]
  return [range, options || NO_OPTIONS]
}

class VascoClient {
  #core
  /** Slot handles by name (no range, tag or zone: the common case) ... */
  #plainSlots = new Map()
  /** ... and by name, range, tag and zone. */
  #slots = new Map()
  /**
   * Handle -> the [map, key] entries of the two above that hold it (several when one question
   * is written several ways: `*` or no range, `passing` or `status: 'passing'`): the wasm cache
   * owns the slots (at most `cacheSize`) and says when it evicts one, so these memos of its
   * handles stay as small as it is.
   */
  #slotKeys = new Map()
  #strategies = new Map()
  #defaultStrategy
  #registrations = new Set()
  #handleSignals
  #feeds
  #leaseTimeoutMs
  /** Codes of the keyed strategies (picks by key can be memoized). */
  #keyed = new Set()
  /** HotKeys by slot * 8 + strategy. */
  #hot = new Map()
  /** Moves whenever an answer is stored or an instance may have been ejected. */
  #changes = 0

  constructor(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw vascoError('invalid_argument', 'options: must be an object', { field: 'options' })
    }
    const env = typeof process !== 'undefined' && process.env ? process.env : {}
    const url = options.url !== undefined ? options.url : env.VASCO_URL
    const token = options.token !== undefined ? options.token : env.VASCO_TOKEN
    const timeout = options.timeout !== undefined ? options.timeout : 5000
    if (typeof timeout !== 'number' || !(timeout > 0)) {
      throw vascoError('invalid_argument', 'timeout: must be a positive number of milliseconds', { field: 'timeout' })
    }
    const params = { ...options }
    if (url !== undefined) params.url = url
    if (token !== undefined) params.token = token
    // How long registrations drain on SIGINT/SIGTERM: the option, else VASCO_DRAIN_MS.
    if (options.drainMs === undefined && env.VASCO_DRAIN_MS !== undefined) params.drainMs = env.VASCO_DRAIN_MS
    this.#core = new wasm.Client(
      params,
      makeSend(timeout),
      () => {
        this.#changes += 1
      },
      (slot) => this.#evicted(slot),
    )
    this.#handleSignals = options.handleSignals !== false
    // Sockets (see feed.cjs, lease.cjs): change feeds keep the cache, leases ride a WebSocket.
    this.#feeds = new Feeds(this.#core, log, options.feeds !== false)
    this.#leaseTimeoutMs = options.lease === 'http' || this.#core.memory ? 0 : timeout
    this.#defaultStrategy = this.#strategy(DEFAULT_STRATEGY)
    // memory: answers follow the in-process registry's every change: nothing is memoized.
    if (!this.#core.memory) {
      for (const name of wasm.strategies()) if (wasm.strategyUsesKey(name)) this.#keyed.add(this.#strategy(name))
    }
    log('client for %s', this.#core.url)
  }

  /** The registry: its normalized http(s) base URL, or `memory:`. */
  get url() {
    return this.#core.url
  }

  /** How many distinct questions the answer cache holds now (at most `cacheSize`, but for watched ones and those being fetched). */
  get cachedQuestions() {
    return this.#core.cachedQuestions
  }

  /** The slot of `name`, `range` and the filters of `options` ({tag, zone, status, passing, all}). */
  #slot(name, range, options) {
    const { tag, zone, status, passing, all } = options
    const statuses = status === undefined && passing === undefined && all === undefined ? undefined : { status, passing, all }
    if (range === undefined && tag === undefined && zone === undefined && statuses === undefined) {
      const slot = this.#plainSlots.get(name)
      return slot !== undefined ? slot : this.#newSlot(this.#plainSlots, name, name)
    }
    const key = `${name}\u0000${range ?? ''}\u0000${tag ?? ''}\u0000${zone ?? ''}\u0000${statuses === undefined ? '' : JSON.stringify(statuses)}`
    const slot = this.#slots.get(key)
    return slot !== undefined ? slot : this.#newSlot(this.#slots, key, name, range, tag, zone, statuses)
  }

  #newSlot(map, key, name, range, tag, zone, statuses) {
    if (typeof name !== 'string') throw vascoError('invalid_name', 'invalid name: must be a string', { field: 'name' })
    const slot = this.#core.slot(name, range ?? undefined, tag ?? undefined, zone ?? undefined, statuses)
    map.set(key, slot)
    const entries = this.#slotKeys.get(slot)
    if (entries === undefined) this.#slotKeys.set(slot, [[map, key]])
    else entries.push([map, key])
    return slot
  }

  /** The wasm cache evicted `slot`: forget its handle, under every key, and its memos. */
  #evicted(slot) {
    const entries = this.#slotKeys.get(slot)
    if (entries === undefined) return
    this.#slotKeys.delete(slot)
    for (const [map, key] of entries) if (map.get(key) === slot) map.delete(key)
    for (const strategy of this.#keyed) this.#hot.delete(slot * 8 + strategy)
  }

  /**
   * Runs `use(slot)` with the slot of the question, asking again once if the slot was evicted
   * meanwhile (a handle held across an await while many other questions were asked).
   */
  async #withSlot(slot, name, range, options, use) {
    try {
      return await use(slot)
    } catch (error) {
      if (error.code !== 'evicted') throw error
      this.#evicted(slot)
      return use(this.#slot(name, range, options))
    }
  }

  #strategy(name) {
    let code = this.#strategies.get(name)
    if (code === undefined) {
      code = this.#core.strategy(String(name))
      this.#strategies.set(name, code)
    }
    return code
  }

  /**
   * Live instances of `name` matching `range` (and `{tag, zone}`), newest version first;
   * passing and warning ones unless `{status, passing, all}` ask for others.
   */
  async instances(name, range, options) {
    ;[range, options] = splitRange(range, options)
    const slot = this.#slot(name, range, options)
    const feed = this.#feeds.settled(name)
    if (feed) await feed
    return this.#withSlot(slot, name, range, options, (slot) => this.#core.instances(slot))
  }

  /** One instance of `name` by `{strategy, key}`; rejects `No url for: <name>` when none. */
  pick(name, range, options) {
    if (range !== null && typeof range === 'object') {
      options = range
      range = undefined
    } else if (!options) {
      options = NO_OPTIONS
    }
    let slot, strategy, key, instance
    try {
      slot = this.#slot(name, range, options)
      strategy = options.strategy === undefined ? this.#defaultStrategy : this.#strategy(options.strategy)
      key = options.key
      if (key != null && typeof key !== 'string') key = String(key)
      else if (key === null) key = undefined
      if (key !== undefined && this.#keyed.has(strategy)) {
        // Sticky picks of a key repeat: memoized while nothing they depend on can change.
        const id = slot * 8 + strategy
        const now = Date.now()
        let hot = this.#hot.get(id)
        const valid = hot !== undefined && hot.changes === this.#changes && now < hot.until
        if (valid) {
          instance = hot.get(key)
          if (instance !== undefined) return Promise.resolve(instance)
        }
        instance = this.#core.pick(slot, strategy, key, false)
        if (instance) {
          if (hot === undefined) {
            hot = new HotKeys()
            this.#hot.set(id, hot)
          }
          // hotUntil is asked after the pick: the slot is as the pick left it.
          if (!valid) hot.reset(this.#changes, this.#core.hotUntil(slot, strategy))
          hot.set(key, instance)
        }
      } else {
        // From the cache when it can answer now (the hot path: no await inside).
        instance = this.#core.pick(slot, strategy, key, false)
      }
    } catch (error) {
      return Promise.reject(error)
    }
    if (instance) return Promise.resolve(instance)
    return this.#pickAfterLoad(name, range, options, slot, strategy, key, instance)
  }

  async #pickAfterLoad(name, range, options, slot, strategy, key, instance) {
    if (instance === undefined) {
      const feed = this.#feeds.settled(name)
      if (feed) await feed
      // Fetch and pick in one step: the answer is held until the pick has it.
      instance = await this.#withSlot(slot, name, range, options, (slot) => this.#core.pickLoaded(slot, strategy, key))
    }
    if (instance == null) throw await this.#core.noUrl(name, range == null ? undefined : String(range))
    return instance
  }

  /** Resolves `{name: range}` (with `{name: url}` mocks) in at most one round trip. */
  async resolve(dependencies, mocks) {
    const feeds = this.#feeds.wantAll(dependencies, mocks)
    if (feeds) await feeds
    return this.#core.resolve(dependencies ?? {}, mocks ?? {})
  }

  /** `{name: url}`, one url per dependency; rejects `No url for: ...` with `missing`. */
  async findDependencies(dependencies, mocks) {
    const feeds = this.#feeds.wantAll(dependencies, mocks)
    if (feeds) await feeds
    return this.#core.findDependencies(dependencies ?? {}, mocks ?? {})
  }

  /** Registers an instance and keeps it alive; resolves to its Registration handle. */
  async register(options) {
    const { healthCheck, rest } = takeHealthCheck(options)
    const spec = wasm.Registration.fromOptions(rest ?? null)
    const handleSignals = options.handleSignals !== undefined ? options.handleSignals !== false : this.#handleSignals
    const registration = this._track(spec, handleSignals, false, healthCheck)
    try {
      await registration._start()
    } catch (error) {
      // Missing dependencies are not a failure here: see registration.missing and the
      // 'dependencies' event. Anything else is, and leaves nothing running.
      if (error.code !== 'no_url') {
        registration.stop()
        delete error.registration
        throw error
      }
    }
    return registration
  }

  _track(spec, handleSignals, keepAlive = false, healthCheck = null) {
    const registration = new Registration(this, this.#core, spec, handleSignals, this.#leaseTimeoutMs, keepAlive, { healthCheck })
    if (spec.hasDependencies) registration._feeds = this.#feeds.wantAll(spec.dependencies, spec.mocks)
    this.#registrations.add(registration)
    return registration
  }

  _forget(registration) {
    this.#registrations.delete(registration)
  }

  /**
   * Calls `listener(instances)` with the live instances of `name` matching `range` (and
   * `{tag, zone}`) once they are known and again whenever they change, from the service's
   * change feed (polling every 250 ms in `memory:` mode). Returns the unsubscribe function.
   */
  watch(name, range, options, listener) {
    if (typeof range === 'function') [range, options, listener] = [undefined, undefined, range]
    else if (typeof options === 'function') [options, listener] = [undefined, options]
    ;[range, options] = splitRange(range, options)
    if (typeof listener !== 'function') {
      throw vascoError('invalid_argument', 'listener: must be a function', { field: 'listener' })
    }
    const slot = this.#slot(name, range, options)
    // A watched question stays in the cache until the watch ends.
    this.#core.holdSlot(slot)
    const unsubscribe = this.#feeds.watch(name, slot, listener)
    let held = true
    return () => {
      if (held) {
        held = false
        this.#core.releaseSlot(slot)
      }
      unsubscribe()
    }
  }

  /** A call to `url` of `name` failed; enough in a row eject it from picks for a while. */
  reportFailure(name, url) {
    const ejected = this.#core.reportFailure(String(name), String(url))
    if (ejected) this.#changes += 1
    return ejected
  }

  /** A call to `url` of `name` succeeded. */
  reportSuccess(name, url) {
    this.#core.reportSuccess(String(name), String(url))
  }

  /** Every service with its versions and live instance counts. */
  async catalog() {
    return this.#core.catalog()
  }

  /** Registrations of this client that are still running. */
  get registrations() {
    return [...this.#registrations]
  }

  /** Deregisters every registration (or only stops them with {deregister: false}), then closes. */
  async close(options = {}) {
    const registrations = [...this.#registrations]
    if (options.deregister === false) {
      for (const r of registrations) r.stop()
    } else {
      await Promise.allSettled(registrations.map((r) => r.deregister()))
    }
    this.#feeds.close()
    this.#core.close()
  }
}

// ---------------------------------------------------------------------------------------------
// The core's Selector, with picks by key memoized on this side of the wasm boundary (its
// candidates never change, so a key's candidate never does).

class Selector extends wasm.Selector {
  #hot = null

  constructor(strategy, candidates, options) {
    super(strategy, candidates, options)
    if (wasm.strategyUsesKey(String(strategy))) this.#hot = new HotKeys()
  }

  /** The index of the picked candidate, or -1 when there are none. */
  pick(key) {
    if (this.#hot === null || typeof key !== 'string') return super.pick(key)
    let index = this.#hot.get(key)
    if (index === undefined) {
      index = super.pick(key)
      this.#hot.set(key, index)
    }
    return index
  }
}

function connect(options) {
  return new VascoClient(options === undefined ? {} : options)
}

// ---------------------------------------------------------------------------------------------
// The original API, on a default client configured from VASCO_URL / VASCO_TOKEN.

let defaultClient = null

function getDefaultClient() {
  if (defaultClient === null) defaultClient = new VascoClient({})
  return defaultClient
}

/**
 * A registration's `healthCheck` option (a function, run in JavaScript) apart from the rest of
 * the options (plain data, read by the wasm core).
 */
function takeHealthCheck(options) {
  if (options === null || typeof options !== 'object' || !Object.prototype.hasOwnProperty.call(options, 'healthCheck')) {
    return { healthCheck: null, rest: options }
  }
  const { healthCheck, ...rest } = options
  if (healthCheck !== undefined && healthCheck !== null && typeof healthCheck !== 'function') {
    throw vascoError('invalid_argument', 'healthCheck: must be a function (returning true, false or {status, note})', { field: 'healthCheck' })
  }
  return { healthCheck: healthCheck ?? null, rest }
}

/** Only the fields of package.json the registration reads (and `vasco.healthCheck` apart). */
function packageFields(pkg) {
  if (pkg === null || typeof pkg !== 'object') return { fields: pkg === undefined ? null : pkg, healthCheck: null }
  const { healthCheck, rest } = takeHealthCheck(pkg.vasco)
  return { fields: { name: pkg.name, version: pkg.version, vasco: rest }, healthCheck }
}

function settle(promise, done) {
  promise.then(
    (value) => process.nextTick(done, null, value),
    (error) => process.nextTick(done, error, error && error.dependencies),
  )
}

/**
 * register(url, pkg, done): resolves pkg.vasco.dependencies, registers pkg.name@pkg.version at
 * url, starts heartbeats, then calls done(err, depUrls). Without done, returns a Promise of
 * depUrls (with a `registration` property). With done, returns the Registration.
 */
function register(url, pkg, done) {
  let registration = null
  let result
  try {
    const { fields, healthCheck } = packageFields(pkg)
    const spec = wasm.Registration.fromPackage(url, fields)
    const client = getDefaultClient()
    const handleSignals = !(pkg.vasco && pkg.vasco.handleSignals === false)
    registration = client._track(spec, handleSignals, true, healthCheck)
    result = registration._start()
  } catch (error) {
    result = Promise.reject(error)
  }
  if (typeof done === 'function') {
    settle(result, done)
    return registration
  }
  if (registration) Object.defineProperty(result, 'registration', { value: registration })
  return result
}

/**
 * findDependencies(dependencies, mocks, done): {name: url} for each dependency; mocks win.
 * Calls done(err, depUrls), or returns a Promise without done.
 */
function findDependencies(dependencies, mocks, done) {
  if (typeof mocks === 'function' && done === undefined) {
    done = mocks
    mocks = undefined
  }
  let result
  try {
    result = getDefaultClient().findDependencies(dependencies, mocks)
  } catch (error) {
    result = Promise.reject(error)
  }
  if (typeof done === 'function') {
    settle(result, done)
    return undefined
  }
  return result
}

/** Deregisters every registration made with register() (the default client). */
async function deregister() {
  if (defaultClient === null) return
  await Promise.allSettled(defaultClient.registrations.map((r) => r.deregister()))
}

// The core, for simulations and tools: in-memory registry, selector, version matching.
const { Registry, versionMatches, normalizeVersion, keyMovement, strategies } = wasm

// Plain names only: index.mjs re-exports what Node's CommonJS lexer reads here, and the lexer
// stops at the first entry that is not a name (`key: value` with a value other than a name).
module.exports = {
  register,
  findDependencies,
  deregister,
  connect,
  VascoClient,
  Registration,
  Registry,
  Selector,
  versionMatches,
  normalizeVersion,
  keyMovement,
  strategies,
}
