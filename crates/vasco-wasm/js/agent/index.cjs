'use strict'
// `vasco agent`: a local sidecar next to services, as Consul's agent is. It serves Consul's agent
// HTTP API (http.cjs) and DNS (dns.cjs), runs HTTP and TCP health checks (checks.cjs), holds the
// leases of the services registered through it at the edge registry and keeps a local copy of
// every service it was asked about, fed by the registry's change feeds (edge.cjs). Answers come
// from that copy, so they keep coming while the registry is unreachable (marked stale), and the
// services are registered again when it returns. On SIGTERM (or SIGINT) it drains its services
// (maintenance), deregisters them and exits.
//
// Every decision (reading registrations, check results, damping, answers, DNS records) is the
// wasm Agent's, that is the core's; this file wires the pieces together.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { format } = require('node:util')
const wasm = require('../wasm/vasco_wasm.js')
const { EdgeLink } = require('./edge.cjs')
const { Checks } = require('./checks.cjs')
const { DnsServer } = require('./dns.cjs')
const { startHttp } = require('./http.cjs')

/** How long a shutdown may take to drain and deregister before the agent exits anyway. */
const SHUTDOWN_DEADLINE_MS = 5_000
/** The data directory is written at most this often. */
const SAVE_DELAY_MS = 200
const DATA_FILE = 'vasco-agent.json'

function agentError(status, message) {
  return Object.assign(new Error(message), { status })
}

function serviceOfPath(instancePath) {
  return instancePath.split('/')[3]
}

/** The host's first non-internal IPv4 address (Consul's default advertise address), else loopback. */
function defaultAddress() {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses || []) {
      if (address.family === 'IPv4' && !address.internal) return address.address
    }
  }
  return '127.0.0.1'
}

function makeLog(enabled, stream = process.stderr) {
  const log = (...args) => {
    if (log.enabled) stream.write(`  vasco:agent ${format(...args)}\n`)
  }
  log.enabled = enabled
  log.info = (...args) => stream.write(`vasco agent: ${format(...args)}\n`)
  return log
}

class LocalAgent {
  #waiters = new Map()
  #saveTimer = null
  #http = null
  #dns = null
  #forwarded = new Map()

  /**
   * @param config {url, token, httpHost, httpPort, dnsHost, dnsPort (null: no DNS), domain,
   *   dnsTtl, dataDir, address, leaseMs, log}
   */
  constructor(config) {
    this.config = config
    this.log = config.log
    this.closing = false
    this.core = new wasm.Agent({
      domain: config.domain,
      dnsTtl: config.dnsTtl,
      leaseMs: config.leaseMs,
      address: config.address,
    })
    this.leases = new Map()
    this.edge = new EdgeLink({
      base: config.url,
      token: config.token,
      core: this.core,
      log: this.log,
      onChange: (service) => this.#changed(service),
      onLeaseEnded: (lease) => this.#leaseEnded(lease),
    })
    this.checks = new Checks((id, result) => this.#checkResult(id, result))
  }

  /** Restores the data directory, then listens; resolves {httpPort, dnsPort}. */
  async start() {
    const saved = this.#load()
    this.#http = await startHttp(this, this.config.httpHost, this.config.httpPort)
    let dnsPort = null
    if (this.config.dnsPort !== null) {
      this.#dns = new DnsServer(this)
      dnsPort = await this.#dns.listen(this.config.dnsHost, this.config.dnsPort)
    }
    // Services registered before a restart are registered again (in the background).
    for (const [id, body] of Object.entries(saved)) {
      this.register(body).catch((error) => this.log.info('could not register %s again: %s', id, error.message))
    }
    // Keep the copies restored from disk current.
    for (const service of this.#restoredServices) this.edge.feed(service)
    return { httpPort: this.#http.port, dnsPort }
  }

  #restoredServices = []

  #load() {
    if (!this.config.dataDir) return {}
    let text
    try {
      text = fs.readFileSync(path.join(this.config.dataDir, DATA_FILE), 'utf8')
    } catch {
      return {}
    }
    try {
      const saved = this.core.importSaved(text)
      this.#restoredServices = Object.keys(JSON.parse(text).copies || {})
      return saved || {}
    } catch (error) {
      this.log.info('ignoring an unreadable %s: %s', DATA_FILE, error.message)
      return {}
    }
  }

  #save(now = false) {
    if (!this.config.dataDir) return
    const write = () => {
      this.#saveTimer = null
      const file = path.join(this.config.dataDir, DATA_FILE)
      try {
        fs.mkdirSync(this.config.dataDir, { recursive: true })
        fs.writeFileSync(`${file}.tmp`, this.core.export())
        fs.renameSync(`${file}.tmp`, file)
      } catch (error) {
        this.log.info('could not write %s: %s', file, error.message)
      }
    }
    if (now) {
      clearTimeout(this.#saveTimer)
      write()
    } else if (!this.#saveTimer) {
      this.#saveTimer = setTimeout(write, SAVE_DELAY_MS)
    }
  }

  /** PUT /v1/agent/service/register. Throws {status, message}. */
  async register(raw) {
    if (this.closing) throw agentError(503, 'the agent is shutting down')
    const registered = this.core.register(raw, Date.now())
    // Kept at once: an agent killed right after this still registers it again when restarted.
    this.#save(true)
    let lease = this.leases.get(registered.id)
    if (lease && lease.path !== registered.path) {
      // The same ID as another instance: the old one goes, as Consul replaces it.
      this.leases.delete(registered.id)
      await lease.deregister()
      lease = undefined
    }
    if (!lease) {
      lease = this.edge.lease(registered.id, registered.path, registered.renews)
      this.leases.set(registered.id, lease)
    } else {
      lease.renews = registered.renews
    }
    this.checks.set(registered.id, registered.check)
    // Its own service is one the agent will be asked about.
    this.edge.feed(serviceOfPath(registered.path))
    const outcome = await lease.register()
    if (outcome.refused) {
      this.#drop(registered.id)
      throw agentError(outcome.refused.status, outcome.refused.message)
    }
    if (outcome.offline) this.log.info('%s registered locally; the registry is unreachable, retrying', registered.id)
  }

  #drop(id) {
    try {
      this.core.deregister(id)
    } catch {
      // already gone
    }
    this.checks.stop(id)
    const lease = this.leases.get(id)
    this.leases.delete(id)
    if (lease) lease.close()
    this.#save(true)
  }

  /** PUT /v1/agent/service/deregister/:id. Throws 404. */
  async deregister(id) {
    this.core.deregister(id)
    this.checks.stop(id)
    const lease = this.leases.get(id)
    this.leases.delete(id)
    this.#save(true)
    if (lease) await lease.deregister()
  }

  /** PUT /v1/agent/service/maintenance/:id. Throws 404. */
  async maintenance(id, enable, reason) {
    const body = this.core.maintenance(id, enable, reason ?? undefined)
    const lease = this.leases.get(id)
    if (lease) await lease.status(body)
  }

  /** PUT /v1/agent/check/<verb>/:check_id. Throws 404 / 400. */
  async checkUpdate(checkId, verb, note, body) {
    const update = this.core.checkUpdate(checkId, verb, note ?? undefined, body)
    const lease = this.leases.get(update.id)
    if (lease) await lease.status(update.body)
  }

  #checkResult(id, result) {
    const step = this.core.checkResult(id, result.status, result.output, Date.now())
    if (!step) return
    this.log('check %s: %s (%s)', id, result.status, result.output)
    const lease = this.leases.get(id)
    if (step.send && lease) lease.status(step.send)
    if (step.reap) {
      this.log.info('%s has been critical for its DeregisterCriticalServiceAfter: deregistering it', id)
      this.deregister(id).catch(() => {})
    }
  }

  /** The registry ended a lease on its side. */
  #leaseEnded(lease) {
    if (lease.renews) return // a lapse (the agent was cut off): it registers again
    // A TTL check's lease ends DeregisterCriticalServiceAfter after its TTL lapsed: reaped.
    this.log.info('%s was removed by the registry (its TTL check stayed critical)', lease.id)
    if (this.leases.get(lease.id) === lease) this.#drop(lease.id)
  }

  #changed(service) {
    const waiters = this.#waiters.get(service)
    if (waiters) {
      this.#waiters.delete(service)
      for (const wake of waiters) wake()
    }
    this.#save()
  }

  #waitChange(service, waitMs, closed) {
    return new Promise((resolve) => {
      let set = this.#waiters.get(service)
      if (!set) this.#waiters.set(service, (set = new Set()))
      const done = () => {
        clearTimeout(timer)
        set.delete(done)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      set.add(done)
      closed.then(done)
    })
  }

  /** A read of a service from the local copy (opening its feed first if needed). */
  async read(route, name, query, closed) {
    let answer = this.core.read(route, name, query)
    if (answer.missing) {
      await this.edge.feed(answer.missing).settled
      answer = this.core.read(route, name, query)
      if (answer.missing) {
        throw agentError(503, `the registry is unreachable and this agent holds no copy of ${answer.missing} yet`)
      }
    }
    if (answer.hold && answer.service) {
      await this.#waitChange(answer.service, answer.waitMs, closed)
      answer = this.core.read(route, name, query)
    }
    return answer
  }

  /** The Consul read headers; stale when the service's feed (or, without one, the registry) is away. */
  readHeaders(index, service) {
    let stale
    if (service) {
      const feed = this.edge.feeds.get(service)
      stale = !feed || !feed.live
    } else {
      stale = [...this.leases.values()].some((lease) => !lease.connected)
    }
    const headers = {
      'content-type': 'application/json',
      'x-consul-index': String(Math.max(1, index || 1)),
      'x-consul-knownleader': String(!stale),
      'x-consul-lastcontact': stale && this.edge.lastContact ? String(Date.now() - this.edge.lastContact) : '0',
    }
    if (stale) headers['x-vasco-stale'] = 'true'
    return headers
  }

  /** A GET the agent does not answer itself, from the registry's Consul API (its last answer while unreachable). */
  async forward(pathAndQuery) {
    const key = pathAndQuery.replace(/([?&])(index|wait)=[^&]*/g, '$1')
    const answer = await this.edge.call('GET', pathAndQuery)
    const pick = (headers) => {
      const out = {}
      for (const name of ['content-type', 'x-consul-index', 'x-consul-knownleader', 'x-consul-lastcontact']) {
        const value = headers.get(name)
        if (value !== null) out[name] = value
      }
      return out
    }
    if (answer.status !== 0) {
      const result = { status: answer.status, body: answer.body, headers: pick(answer.headers) }
      if (answer.status === 200) this.#forwarded.set(key, result)
      return result
    }
    const cached = this.#forwarded.get(key)
    if (!cached) throw agentError(503, 'the registry is unreachable')
    return {
      ...cached,
      headers: {
        ...cached.headers,
        'x-consul-knownleader': 'false',
        'x-consul-lastcontact': String(this.edge.lastContact ? Date.now() - this.edge.lastContact : 0),
        'x-vasco-stale': 'true',
      },
    }
  }

  /** A DNS question, from the local copy (opening the service's feed first if needed). */
  async answerDns(name, type) {
    let answer = JSON.parse(this.core.dns(name, type, Date.now(), false))
    if (answer.need) {
      await this.edge.feed(answer.need).settled
      answer = JSON.parse(this.core.dns(name, type, Date.now(), true))
    }
    return answer
  }

  /**
   * Drains (maintenance) and deregisters every service registered through the agent, then
   * stops serving. Bounded by SHUTDOWN_DEADLINE_MS.
   */
  async shutdown() {
    if (this.closing) return
    this.closing = true
    this.checks.stopAll()
    const ids = this.core.ids()
    this.log.info('shutting down: draining and deregistering %d service(s)', ids.length)
    const work = Promise.allSettled(
      ids.map(async (id) => {
        const lease = this.leases.get(id)
        try {
          if (lease && lease.connected) await lease.status(this.core.maintenance(id, true, 'vasco agent is shutting down'))
        } catch {
          // deregistering is what matters
        }
        try {
          this.core.deregister(id)
        } catch {
          // gone already
        }
        this.leases.delete(id)
        if (lease) await lease.deregister()
      }),
    )
    let timer
    await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_DEADLINE_MS)))])
    clearTimeout(timer)
    for (const lease of this.leases.values()) lease.close()
    this.leases.clear()
    this.#save(true)
    await this.close()
  }

  /** Stops serving and closes every socket, without deregistering. */
  async close() {
    this.closing = true
    this.checks.stopAll()
    for (const lease of this.leases.values()) lease.close()
    this.edge.close()
    clearTimeout(this.#saveTimer)
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake()
    await Promise.all([
      this.#dns && this.#dns.close(),
      this.#http &&
        new Promise((resolve) => {
          this.#http.server.close(() => resolve())
          this.#http.server.closeAllConnections()
        }),
    ])
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration: flags and environment.

const USAGE = `Usage: vasco agent [options]

A local sidecar: Consul's agent HTTP API and DNS next to your services, their HTTP, TCP and TTL
health checks, and their leases at the Vasco registry.

Options:
  --http-addr HOST:PORT     Consul agent HTTP API (default 127.0.0.1:8500)
  --dns-addr HOST:PORT      DNS over UDP and TCP (default 127.0.0.1:8600; "off" for none)
  --domain DOMAIN           DNS domain answered (default consul)
  --dns-ttl SECONDS         TTL of service records (default 0, as in Consul)
  --data-dir DIR            keep registrations and the local copy here across restarts
  --advertise-addr IP       Address of services registered without one (default: this host's
                            first non-loopback IPv4 address)
  --lease-ttl SECONDS       lease held for the services registered here, except those with a
                            TTL check, whose results renew theirs (default 15)
  --url URL                 the registry (default: VASCO_URL, else http://127.0.0.1:8787)
  -h, --help                this text

Environment: VASCO_URL (the registry), VASCO_TOKEN (its write token), DEBUG=vasco (log more).
`

function parseAddr(flag, value, defaultHost) {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value)
  if (!match) throw new Error(`${flag} ${JSON.stringify(value)}: use HOST:PORT (e.g. 127.0.0.1:8500)`)
  const port = Number(match[3])
  if (port > 65535) throw new Error(`${flag} ${JSON.stringify(value)}: the port must be at most 65535`)
  return { host: match[1] || match[2] || defaultHost, port }
}

/** Reads the command line (after `agent`) and the environment into a configuration. Throws on bad input. */
function parseArgs(argv, env = process.env) {
  const flags = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') return { help: true }
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!match) throw new Error(`unknown argument ${JSON.stringify(arg)}`)
    const name = match[1]
    const known = ['http-addr', 'dns-addr', 'domain', 'dns-ttl', 'data-dir', 'advertise-addr', 'lease-ttl', 'url']
    if (!known.includes(name)) throw new Error(`unknown option --${name}`)
    let value = match[2]
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) throw new Error(`--${name} needs a value`)
    }
    flags[name] = value
  }
  const httpAddr = parseAddr('--http-addr', flags['http-addr'] ?? '127.0.0.1:8500', '127.0.0.1')
  const dnsOff = flags['dns-addr'] === 'off'
  const dnsAddr = dnsOff ? null : parseAddr('--dns-addr', flags['dns-addr'] ?? '127.0.0.1:8600', '127.0.0.1')
  const seconds = (flag, fallback) => {
    const text = flags[flag]
    if (text === undefined) return fallback
    const value = Number(text)
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} ${JSON.stringify(text)}: use a number of seconds`)
    return value
  }
  const leaseTtl = seconds('lease-ttl', 15)
  if (leaseTtl < 3 || leaseTtl > 3600) throw new Error('--lease-ttl must be from 3 to 3600 seconds')
  let url
  try {
    url = wasm.agentRegistryUrl(flags.url ?? env.VASCO_URL ?? undefined)
  } catch (error) {
    throw new Error(`VASCO_URL: ${error.message}`)
  }
  const token = (env.VASCO_TOKEN || '').trim() || undefined
  return {
    url,
    token,
    httpHost: httpAddr.host,
    httpPort: httpAddr.port,
    dnsHost: dnsAddr ? dnsAddr.host : null,
    dnsPort: dnsAddr ? dnsAddr.port : null,
    domain: flags.domain ?? 'consul',
    dnsTtl: seconds('dns-ttl', 0),
    dataDir: flags['data-dir'] ? path.resolve(flags['data-dir']) : null,
    address: flags['advertise-addr'] ?? defaultAddress(),
    leaseMs: Math.round(leaseTtl * 1000),
  }
}

/** Starts an agent from a configuration (see parseArgs); resolves the running LocalAgent with its ports. */
async function startAgent(config) {
  const debug = /(^|[\s,])vasco(:\*|:agent|\*)?($|[\s,])/.test(process.env.DEBUG || '') || /(^|[\s,])\*($|[\s,])/.test(process.env.DEBUG || '')
  const agent = new LocalAgent({ log: makeLog(debug), ...config })
  const ports = await agent.start()
  agent.httpPort = ports.httpPort
  agent.dnsPort = ports.dnsPort
  return agent
}

/** `vasco agent ...`: runs until SIGTERM or SIGINT, then drains, deregisters and exits 0. */
async function main(argv) {
  let config
  try {
    config = parseArgs(argv)
  } catch (error) {
    process.stderr.write(`vasco agent: ${error.message}\n\n${USAGE}`)
    process.exitCode = 2
    return
  }
  if (config.help) {
    process.stdout.write(USAGE)
    return
  }
  let agent
  try {
    agent = await startAgent(config)
  } catch (error) {
    process.stderr.write(`vasco agent: could not start: ${error.message}\n`)
    process.exitCode = 1
    return
  }
  const dns = agent.dnsPort === null ? 'no DNS' : `DNS on ${config.dnsHost}:${agent.dnsPort} (UDP and TCP, domain ${config.domain})`
  process.stdout.write(
    `vasco agent: Consul HTTP API on http://${config.httpHost}:${agent.httpPort}, ${dns}, registry ${config.url}${config.token ? '' : ' (no VASCO_TOKEN: registrations will be refused)'}\n`,
  )
  const stop = (signal) => {
    process.removeAllListeners('SIGTERM')
    process.removeAllListeners('SIGINT')
    agent.log.info('%s received', signal)
    agent.shutdown().then(
      () => process.exit(0),
      (error) => {
        agent.log.info('shutdown failed: %s', error.message)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

module.exports = { LocalAgent, startAgent, parseArgs, main, USAGE }
