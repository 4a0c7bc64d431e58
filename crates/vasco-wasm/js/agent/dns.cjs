'use strict'
// The agent's DNS server, on UDP and TCP (RFC 1035 framing, several queries per connection).
// Which records answer a question, and with which code, is the wasm Agent's `dns` (the core's
// wire::dns, from the local copy); this file decodes and encodes messages with `dns-packet` and
// fits UDP answers into the client's limit (512 bytes, or its EDNS size): whole answer records
// are dropped from the end, with the SRV targets' addresses that go with them, and the answer
// is flagged truncated (TC), so the client asks again over TCP.

const dgram = require('node:dgram')
const net = require('node:net')
const dnsPacket = require('dns-packet')
const wasm = require('../wasm/vasco_wasm.js')

const FORMERR = 1
const SERVFAIL = 2

/** The size of an encoded packet, or Infinity when it cannot be encoded. */
function size(packet) {
  try {
    return dnsPacket.encodingLength(packet)
  } catch {
    return Infinity
  }
}

/**
 * Cuts `packet` to at most `limit` bytes: the most leading answers that fit, the additional
 * records of the SRV targets still answered, no authority section; flags it truncated.
 */
function truncate(packet, limit) {
  const answers = packet.answers
  const targets = (kept) => new Set(kept.filter((a) => a.type === 'SRV').map((a) => a.data.target.toLowerCase()))
  const cut = (n) => {
    const kept = answers.slice(0, n)
    const wanted = targets(kept)
    return {
      ...packet,
      flags: packet.flags | dnsPacket.TRUNCATED_RESPONSE,
      answers: kept,
      authorities: [],
      additionals: packet.additionals.filter((r) => r.type === 'OPT' || wanted.has(String(r.name).toLowerCase())),
    }
  }
  let low = 0
  let high = answers.length
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (size(cut(mid)) <= limit) low = mid
    else high = mid - 1
  }
  return cut(low)
}

class DnsServer {
  #agent
  #udp = null
  #tcp = null
  #sockets = new Set()

  /** @param agent the LocalAgent (its `answerDns(name, type)` resolves the wasm answer) */
  constructor(agent) {
    this.#agent = agent
  }

  /** Listens on host:port over UDP and TCP; resolves the bound port. */
  async listen(host, port) {
    const family = net.isIPv6(host) ? 'udp6' : 'udp4'
    this.#udp = dgram.createSocket(family)
    await new Promise((resolve, reject) => {
      this.#udp.once('error', reject)
      this.#udp.bind(port, host, () => {
        this.#udp.off('error', reject)
        resolve()
      })
    })
    const bound = this.#udp.address().port
    this.#udp.on('error', (error) => this.#agent.log('dns udp: %s', error.message))
    this.#udp.on('message', (message, remote) => {
      this.#reply(message, true).then((reply) => {
        if (reply) this.#udp.send(reply, remote.port, remote.address)
      })
    })
    this.#tcp = net.createServer((socket) => this.#connection(socket))
    await new Promise((resolve, reject) => {
      this.#tcp.once('error', reject)
      this.#tcp.listen(bound, host, () => {
        this.#tcp.off('error', reject)
        resolve()
      })
    })
    return bound
  }

  #connection(socket) {
    this.#sockets.add(socket)
    socket.setTimeout(10_000, () => socket.destroy())
    let buffer = Buffer.alloc(0)
    let chain = Promise.resolve()
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      while (buffer.length >= 2) {
        const length = buffer.readUInt16BE(0)
        if (buffer.length < 2 + length) break
        const message = buffer.subarray(2, 2 + length)
        buffer = buffer.subarray(2 + length)
        // Answers go out in the order the questions came.
        chain = chain.then(async () => {
          const reply = await this.#reply(message, false)
          if (reply && !socket.destroyed) {
            const framed = Buffer.alloc(2 + reply.length)
            framed.writeUInt16BE(reply.length, 0)
            reply.copy(framed, 2)
            socket.write(framed)
          }
        })
      }
    })
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.#sockets.delete(socket))
  }

  /** The encoded reply to one message, or null (nothing to answer, or it could not be encoded: logged). */
  async #reply(message, udp) {
    try {
      return await this.#respond(message, udp)
    } catch (error) {
      this.#agent.log('dns: no answer to a %d-byte message: %s', message.length, error.message)
      return null
    }
  }

  /** The encoded reply to one message (null to stay silent: not even a header to answer). */
  async #respond(message, udp) {
    let query
    try {
      query = dnsPacket.decode(message)
    } catch {
      if (message.length < 12) return null
      return dnsPacket.encode({
        type: 'response',
        id: message.readUInt16BE(0),
        flags: FORMERR,
        questions: [],
        answers: [],
        authorities: [],
        additionals: [],
      })
    }
    if (query.type !== 'query') return null
    const opt = (query.additionals || []).find((r) => r.type === 'OPT')
    const base = {
      type: 'response',
      id: query.id,
      questions: query.questions.slice(0, 1),
      answers: [],
      authorities: [],
      additionals: opt ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] }] : [],
    }
    const rd = query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0
    const question = query.questions[0]
    if (!question) return dnsPacket.encode({ ...base, flags: FORMERR | rd })
    let answer
    try {
      answer = await this.#agent.answerDns(question.name, question.type)
    } catch (error) {
      this.#agent.log('dns %s %s: %s', question.type, question.name, error.message)
      return dnsPacket.encode({ ...base, flags: SERVFAIL | rd })
    }
    const packet = {
      ...base,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rd | answer.rcodeCode,
      answers: answer.answers,
      authorities: answer.authorities,
      additionals: [...answer.additionals, ...base.additionals],
    }
    const encoded = dnsPacket.encode(packet)
    if (udp) {
      const limit = wasm.dnsUdpLimit(opt ? opt.udpPayloadSize : undefined)
      if (encoded.length > limit) return dnsPacket.encode(truncate(packet, limit))
    }
    return encoded
  }

  async close() {
    for (const socket of this.#sockets) socket.destroy()
    await Promise.all([
      this.#udp && new Promise((resolve) => this.#udp.close(() => resolve())),
      this.#tcp && new Promise((resolve) => this.#tcp.close(() => resolve())),
    ])
  }
}

module.exports = { DnsServer, truncate }
