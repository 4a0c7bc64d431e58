'use strict'
// The agent's HTTP server: Consul's agent API on 127.0.0.1:8500. Registrations, check results
// and maintenance go to the LocalAgent (and from there to the edge registry); reads of services
// are answered from the local copy (blocking queries wait on its change index), and other GET
// routes are forwarded to the registry's own Consul API. Answers and errors are shaped as
// Consul's: JSON with X-Consul-Index / X-Consul-KnownLeader / X-Consul-LastContact, errors as
// short text. A read served while the registry is unreachable says so: X-Consul-KnownLeader:
// false, X-Consul-LastContact: ms since the registry was last heard, and X-Vasco-Stale: true.

const http = require('node:http')
const wasm = require('../wasm/vasco_wasm.js')

/** The largest request body read. */
const MAX_BODY_BYTES = 64 * 1024

function send(res, status, body, headers = {}) {
  if (res.headersSent || res.destroyed) return
  const isText = typeof body === 'string' && !headers['content-type']
  res.writeHead(status, {
    'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json',
    ...headers,
  })
  res.end(body)
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error('Request body too large'), { status: 413 }))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function decodeRest(text) {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Routes a request to the LocalAgent. */
function handler(agent) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://agent')
    const path = url.pathname
    const query = url.search.slice(1)
    const method = req.method
    const read = method === 'GET' || method === 'HEAD'
    const readHeaders = (index, service) => agent.readHeaders(index, service)
    try {
      let m
      if (read && (m = /^\/v1\/(agent\/self|catalog\/datacenters|status\/leader)$/.exec(path))) {
        return send(res, 200, wasm.consulFixed(m[1]), readHeaders(1))
      }
      if (read && path === '/v1/agent/services') {
        const { index, body } = agent.core.agentServices()
        return send(res, 200, body, readHeaders(index))
      }
      if (read && path === '/v1/agent/checks') {
        const { index, body } = agent.core.agentChecks()
        return send(res, 200, body, readHeaders(index))
      }
      if (read && (m = /^\/v1\/(health\/service|catalog\/service|health\/checks)\/(.+)$/.exec(path))) {
        const route = { 'health/service': 'health', 'catalog/service': 'catalog', 'health/checks': 'checks' }[m[1]]
        const closed = new Promise((resolve) => res.once('close', resolve))
        const answer = await agent.read(route, decodeRest(m[2]), query, closed)
        return send(res, 200, answer.body, readHeaders(answer.index, answer.service))
      }
      if (read && path.startsWith('/v1/')) {
        // Everything else (the catalog of services, ...) from the registry's own Consul API.
        const answer = await agent.forward(path + url.search)
        return send(res, answer.status, answer.body, answer.headers)
      }
      if (method !== 'PUT') {
        return send(res, path.startsWith('/v1/') ? 405 : 404, path.startsWith('/v1/') ? 'method not allowed' : 'Invalid URL path: not a Consul API path')
      }
      if (path === '/v1/agent/service/register') {
        const body = await readBody(req)
        await agent.register(body.toString('utf8'))
        return send(res, 200, '')
      }
      if ((m = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(path))) {
        await agent.deregister(decodeRest(m[1]))
        return send(res, 200, '')
      }
      if ((m = /^\/v1\/agent\/service\/maintenance\/(.+)$/.exec(path))) {
        const enable = url.searchParams.get('enable')
        if (enable === null) throw Object.assign(new Error('Missing value for enable'), { status: 400 })
        if (!/^(1|t|T|true|TRUE|True|0|f|F|false|FALSE|False)$/.test(enable)) {
          throw Object.assign(new Error(`Invalid value for enable: ${JSON.stringify(enable)}`), { status: 400 })
        }
        await agent.maintenance(decodeRest(m[1]), /^(1|t|T|true|TRUE|True)$/.test(enable), url.searchParams.get('reason'))
        return send(res, 200, '')
      }
      if ((m = /^\/v1\/agent\/check\/(pass|warn|fail|update)\/(.+)$/.exec(path))) {
        const body = m[1] === 'update' ? await readBody(req) : undefined
        await agent.checkUpdate(decodeRest(m[2]), m[1], url.searchParams.get('note'), body && body.length ? body : undefined)
        return send(res, 200, '')
      }
      return send(res, 404, `Invalid URL path: ${path}`)
    } catch (error) {
      const status = Number.isInteger(error.status) && error.status >= 400 ? error.status : 500
      if (status >= 500) agent.log('%s %s: %s', method, path, error.stack || error.message)
      return send(res, status, error.message || String(error))
    }
  }
}

/** Starts the HTTP server on host:port; resolves {server, port}. */
async function startHttp(agent, host, port) {
  const server = http.createServer(handler(agent))
  server.keepAliveTimeout = 65_000
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return { server, port: server.address().port }
}

module.exports = { startHttp }
