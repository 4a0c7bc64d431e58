'use strict'
// The health checks the agent runs itself, as Consul's agent runs them: an HTTP request (method,
// headers, body, timeout; TLS verification can be skipped) or a TCP connect, every interval. The
// status of an HTTP answer is the core's (`httpCheckStatus`: 2xx passing, 429 warning, anything
// else critical); what a result does (damping, whether to tell the registry, when to deregister
// a service critical for DeregisterCriticalServiceAfter) is the wasm Agent's `checkResult`.

const http = require('node:http')
const https = require('node:https')
const net = require('node:net')
const wasm = require('../wasm/vasco_wasm.js')

/** How much of an HTTP check's body becomes its output (Consul keeps 4 KiB; the note 256 chars). */
const OUTPUT_BYTES = 4096

/** One HTTP probe: resolves {status, output}. */
function probeHttp(plan) {
  return new Promise((resolve) => {
    let url
    try {
      url = new URL(plan.url)
    } catch {
      resolve({ status: 'critical', output: `invalid URL ${plan.url}` })
      return
    }
    const client = url.protocol === 'https:' ? https : http
    const headers = { 'user-agent': 'Consul Health Check', accept: 'text/plain, text/*, */*' }
    for (const [name, values] of Object.entries(plan.headers || {})) headers[name.toLowerCase()] = values
    const prefix = `HTTP ${plan.method} ${plan.url}`
    let done = false
    const finish = (result) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(result)
    }
    const request = client.request(url, {
      method: plan.method,
      headers,
      rejectUnauthorized: !plan.tls_skip_verify,
      agent: false,
    })
    const timer = setTimeout(() => {
      request.destroy()
      finish({ status: 'critical', output: `${prefix}: timed out after ${plan.timeout_ms} ms` })
    }, plan.timeout_ms)
    request.on('response', (response) => {
      const chunks = []
      let size = 0
      response.on('data', (chunk) => {
        if (size < OUTPUT_BYTES) chunks.push(chunk)
        size += chunk.length
        if (size > 64 * 1024) response.destroy()
      })
      const settle = () => {
        const body = Buffer.concat(chunks).subarray(0, OUTPUT_BYTES).toString('utf8')
        finish({
          status: wasm.httpCheckStatus(response.statusCode),
          output: `${prefix}: ${response.statusCode} ${response.statusMessage || ''} Output: ${body}`.trim(),
        })
      }
      response.on('end', settle)
      response.on('close', settle)
      response.on('error', settle)
    })
    request.on('error', (error) => finish({ status: 'critical', output: `${prefix}: ${error.code || error.message}` }))
    request.end(plan.body || undefined)
  })
}

/** One TCP probe: resolves {status, output}. */
function probeTcp(plan) {
  return new Promise((resolve) => {
    const at = plan.address.lastIndexOf(':')
    const host = plan.address.slice(0, at).replace(/^\[|\]$/g, '')
    const port = Number(plan.address.slice(at + 1))
    const socket = net.connect({ host, port })
    const finish = (status, output) => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ status, output })
    }
    const timer = setTimeout(() => finish('critical', `TCP connect ${plan.address}: timed out`), plan.timeout_ms)
    socket.once('connect', () => finish('passing', `TCP connect ${plan.address}: Success`))
    socket.once('error', (error) => finish('critical', `TCP connect ${plan.address}: ${error.code || error.message}`))
  })
}

/** The running checks, by Consul service ID. */
class Checks {
  #runs = new Map()
  #onResult

  /** @param onResult (id, {status, output}) called after every probe */
  constructor(onResult) {
    this.#onResult = onResult
  }

  /** Runs `plan` for `id` (replacing what ran before unless it is the same); `null` stops. */
  set(id, plan) {
    const running = this.#runs.get(id)
    const key = plan ? JSON.stringify(plan) : ''
    if (running && running.key === key) return
    this.stop(id)
    if (!plan || (plan.kind !== 'http' && plan.kind !== 'tcp')) return
    const run = { key, timer: null, stopped: false }
    this.#runs.set(id, run)
    const probe = plan.kind === 'http' ? probeHttp : probeTcp
    const tick = async () => {
      if (run.stopped) return
      const started = Date.now()
      const result = await probe(plan)
      if (run.stopped) return
      this.#onResult(id, result)
      run.timer = setTimeout(tick, Math.max(0, plan.interval_ms - (Date.now() - started)))
    }
    // The first probe at once: a new service is known to be up (or not) without an interval's wait.
    run.timer = setTimeout(tick, 0)
  }

  stop(id) {
    const run = this.#runs.get(id)
    if (!run) return
    run.stopped = true
    clearTimeout(run.timer)
    this.#runs.delete(id)
  }

  stopAll() {
    for (const id of [...this.#runs.keys()]) this.stop(id)
  }
}

module.exports = { Checks, probeHttp, probeTcp }
