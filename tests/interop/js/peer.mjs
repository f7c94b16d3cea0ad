// js-libp2p interop test peer for p2pkit (see docs/interop.md).
//
//   node peer.mjs listen [--listen MADDR]... [--security noise,tls,plaintext]
//                        [--muxer yamux,mplex] [--no-early-muxer] [--stock-limits]
//                        [--identify-push]  (run identify-push; add a protocol after the
//                        first peer identified us, so js pushes its new list)
//                        [--cert PEM --key PEM]  (certificate for /tls/ws listen addresses)
//   node peer.mjs ping <maddr> [--count N]
//   node peer.mjs echo <maddr> [--streams N] [--bytes B]
//   node peer.mjs perf <maddr> [--upload B] [--download B]
//   node peer.mjs identify <maddr>
//   node peer.mjs transfer <maddr> [--bytes B]
//
// Transports follow the addresses: a `/udp/N/quic-v1` listen address or target
// loads @chainsafe/libp2p-quic (QUIC brings its own TLS and streams, so
// --security/--muxer do not apply to those connections), `/tcp/` loads @libp2p/tcp.
//
// The listener prints `LISTEN <maddr>/p2p/<id>` per address, then one
// `CONNECTION {json}` / `IDENTIFY {json}` line per inbound connection / identify
// result, and serves ping, identify, /echo/1.0.0 and /perf/1.0.0 until
// SIGTERM/SIGINT. Dialer ops print one JSON object on stdout and exit 0, or
// print `error: <reason>` on stderr and exit non-zero.

// MUST stay the first import: js-libp2p calls Promise.withResolvers (Node 22+).
import './polyfill.mjs'

import { createHash, randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { generateKeyPair, publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
// The stream I/O the browser test uses too (plain ES module, no dependencies).
import { CHUNK, Reader, waitDrain, write } from '../../browser/stream-io.js'

const PING = '/ipfs/ping/1.0.0'
const ECHO = '/echo/1.0.0'
const PERF = '/perf/1.0.0'
const PING_SIZE = 32
const ZEROS = new Uint8Array(CHUNK)
// Raised per-protocol stream limits (js stock: 32 inbound / 64 outbound).
const MAX_STREAMS = 1024
// Reader pauses a yamux stream when this much is queued unread, so the remote
// runs out of window (real backpressure) instead of js buffering everything.
const PAUSE_AT = 4 * 1024 * 1024

// ---------------------------------------------------------------- arguments

const PUSH_TEST = '/js/push-test/1.0.0'
const OPS = new Set(['listen', 'ping', 'echo', 'perf', 'identify', 'transfer'])

function usage (msg) {
  process.stderr.write(`error: ${msg}\n`)
  process.exit(2)
}

function parse (argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        listen: { type: 'string', multiple: true },
        security: { type: 'string', default: 'noise' },
        muxer: { type: 'string', default: 'yamux' },
        'no-early-muxer': { type: 'boolean', default: false },
        'stock-limits': { type: 'boolean', default: false },
        'lazy-select': { type: 'boolean', default: false },
        'identify-push': { type: 'boolean', default: false },
        cert: { type: 'string' },
        key: { type: 'string' },
        'key-type': { type: 'string', default: 'Ed25519' },
        count: { type: 'string', default: '5' },
        streams: { type: 'string', default: '1' },
        bytes: { type: 'string', default: '1024' },
        upload: { type: 'string', default: '0' },
        download: { type: 'string', default: '0' },
        timeout: { type: 'string', default: '120' }
      }
    })
  } catch (err) {
    usage(err.message)
  }
  const [op, target, ...extra] = parsed.positionals
  if (!OPS.has(op)) usage(`unknown op ${JSON.stringify(op)}; one of ${[...OPS].join(', ')}`)
  if (op !== 'listen' && target == null) usage(`${op} needs a <maddr>`)
  if (extra.length > 0) usage(`unexpected arguments: ${extra.join(' ')}`)
  const v = parsed.values
  const int = (name) => {
    const n = Number(v[name])
    if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a non-negative integer`)
    return n
  }
  const list = (name, allowed) => {
    const items = v[name].split(',').map(s => s.trim()).filter(s => s !== '')
    for (const item of items) {
      if (!allowed.includes(item)) usage(`--${name}: unknown ${JSON.stringify(item)} (${allowed.join(', ')})`)
    }
    if (items.length === 0) usage(`--${name} is empty`)
    return items
  }
  const keyTypes = { ed25519: 'Ed25519', secp256k1: 'secp256k1', rsa: 'RSA' }
  const keyType = keyTypes[v['key-type'].toLowerCase()]
  if (keyType == null) usage(`--key-type: one of ${Object.keys(keyTypes).join(', ')} (js 3.x has no ECDSA identities)`)
  return {
    op,
    target,
    listen: v.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    security: list('security', ['noise', 'tls', 'plaintext']),
    muxer: list('muxer', ['yamux', 'mplex']),
    earlyMuxer: !v['no-early-muxer'],
    stockLimits: v['stock-limits'],
    lazySelect: v['lazy-select'],
    identifyPush: v['identify-push'],
    cert: v.cert,
    key: v.key,
    keyType,
    count: int('count'),
    streams: int('streams'),
    bytes: int('bytes'),
    upload: int('upload'),
    download: int('download'),
    timeoutMs: int('timeout') * 1000
  }
}

// ---------------------------------------------------------------- node

/**
 * Noise whose handshake offers no muxer list (early muxer negotiation off):
 * js only exposes this as the per-upgrade option skipStreamMuxerNegotiation,
 * so wrap the encrypter and force it on every handshake. The upgrader then
 * falls back to multistream-select for the muxer.
 */
function noiseWithoutEarlyMuxer (noise) {
  const factory = noise()
  return (components) => {
    const enc = factory(components)
    const inbound = enc.secureInbound.bind(enc)
    const outbound = enc.secureOutbound.bind(enc)
    enc.secureInbound = (conn, options) => inbound(conn, { ...options, skipStreamMuxerNegotiation: true })
    enc.secureOutbound = (conn, options) => outbound(conn, { ...options, skipStreamMuxerNegotiation: true })
    return enc
  }
}

const isQuic = (addr) => addr.includes('/quic-v1')
const isWs = (addr) => /\/(ws|wss)(\/|$)/.test(addr)

/**
 * The transports the addresses need: TCP unless every address is QUIC;
 * @chainsafe/libp2p-quic (a native quinn binary through napi-rs) only when a
 * QUIC address is involved, so TCP-only runs never load it; WebSocket
 * (@libp2p/websockets) when an address is /ws or /tls/ws.  --cert/--key (PEM
 * files) serve /tls/ws; a /tls/ws dial trusts the CAs of NODE_EXTRA_CA_CERTS.
 * Node 20 has no global WebSocket, which the transport dials with: the `ws`
 * package's (the one its listener uses) stands in.
 */
async function transportsFor (opts, addrs) {
  const transports = []
  if (addrs.length === 0 || addrs.some((a) => !isQuic(a))) transports.push(tcp())
  if (addrs.some(isQuic)) {
    const { quic } = await import('@chainsafe/libp2p-quic')
    // maxConcurrentStreamLimit: js stock allows 256 concurrent streams per connection.
    transports.push(opts.stockLimits ? quic() : quic({ maxConcurrentStreamLimit: MAX_STREAMS }))
  }
  if (addrs.some(isWs)) {
    const { webSockets } = await import('@libp2p/websockets')
    if (typeof globalThis.WebSocket === 'undefined') {
      const { WebSocket } = await import('ws')
      globalThis.WebSocket = WebSocket
    }
    const init = {}
    if (opts.cert != null && opts.key != null) {
      const { readFileSync } = await import('node:fs')
      init.https = { cert: readFileSync(opts.cert), key: readFileSync(opts.key) }
    }
    transports.push(webSockets(init))
  }
  return transports
}

async function createNode (opts, { listen, identifyOnConnect = true }) {
  const raised = !opts.stockLimits
  // Only what was asked for is imported: @libp2p/tls alone costs ~0.5 s of
  // start-up, paid by every dialer op of the test run otherwise.
  const encrypters = []
  for (const name of opts.security) {
    if (name === 'noise') {
      const { noise } = await import('@chainsafe/libp2p-noise')
      encrypters.push(opts.earlyMuxer ? noise() : noiseWithoutEarlyMuxer(noise))
    } else if (name === 'tls') {
      const { tls } = await import('@libp2p/tls')
      encrypters.push(tls())
    } else {
      const { plaintext } = await import('@libp2p/plaintext')
      encrypters.push(plaintext())
    }
  }
  const muxers = []
  for (const name of opts.muxer) {
    if (name === 'yamux') {
      const { yamux } = await import('@chainsafe/libp2p-yamux')
      muxers.push(raised
        ? yamux({
          maxEarlyStreams: 256,
          // > max window (16 MiB): a paused stream may still receive all the
          // credit granted before the pause without being aborted.
          streamOptions: { maxReadBufferLength: 40 * 1024 * 1024 }
        })
        : yamux())
    } else {
      const { mplex } = await import('@libp2p/mplex')
      // disconnectThreshold: js stock aborts a connection on > 5 new streams/s
      // (or > 5 frames/s for unknown streams).  maxEarlyStreams: as for yamux, js
      // aborts the muxer when more than 10 streams arrive before its upgrader
      // listens for them (mplex has no ACK a dialer could wait for).
      muxers.push(raised ? mplex({ disconnectThreshold: 1_000_000, maxEarlyStreams: 256 }) : mplex())
    }
  }
  const limits = raised ? { maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS } : {}
  const node = await createLibp2p({
    privateKey: await generateKeyPair(opts.keyType),
    addresses: { listen },
    transports: await transportsFor(opts, opts.op === 'listen' ? listen : [opts.target]),
    connectionEncrypters: encrypters,
    streamMuxers: muxers,
    connectionManager: raised
      ? { inboundConnectionThreshold: 100_000, maxIncomingPendingConnections: 1000, maxConnections: 10_000 }
      : {},
    services: {
      ping: ping(raised ? { ...limits, timeout: 120_000 } : {}),
      identify: identify({ runOnConnectionOpen: identifyOnConnect, ...(raised ? { timeout: 20_000 } : {}) }),
      // --identify-push: also run js's identify-push service (push on our changes, accept pushes)
      ...(opts.identifyPush ? { identifyPush: identifyPush() } : {})
    }
  })
  const handlerOpts = { ...limits, runOnLimitedConnection: true }
  await node.handle(ECHO, (stream, conn) => handleEcho(stream, conn, opts), handlerOpts)
  await node.handle(PERF, (stream, conn) => handlePerf(stream, conn, opts), handlerOpts)
  return node
}

async function stopNode (node, ms = 3000) {
  let timer
  await Promise.race([
    node.stop().catch((err) => process.stderr.write(`warning: stop: ${describe(err)}\n`)),
    new Promise((resolve) => { timer = setTimeout(resolve, ms) })
  ])
  clearTimeout(timer)
}

// ---------------------------------------------------------------- stream I/O

function readerFor (stream, conn, opts) {
  // Pausing only makes sense with flow control (yamux), and is only safe when
  // the read buffer limit has been raised above the maximum window.
  const pause = !opts.stockLimits && conn.multiplexer === '/yamux/1.0.0'
  return new Reader(stream, { pauseAt: pause ? PAUSE_AT : 0 })
}

async function writeZeros (stream, n) {
  let left = n
  while (left > 0) {
    const len = Math.min(left, CHUNK)
    if (!stream.send(len === CHUNK ? ZEROS : ZEROS.subarray(0, len))) await waitDrain(stream)
    left -= len
  }
}

// ---------------------------------------------------------------- handlers

/** /echo/1.0.0: echo everything until EOF, then close our write side. */
async function handleEcho (stream, conn, opts) {
  const reader = readerFor(stream, conn, opts)
  try {
    let chunk
    while ((chunk = await reader.read()) !== null) await write(stream, chunk)
    await stream.close()
  } catch (err) {
    process.stderr.write(`warning: echo handler: ${describe(err)}\n`)
    stream.abort(err)
  }
}

/**
 * /perf/1.0.0 (libp2p/specs perf/perf.md): u64 BE n, drain upload to EOF, send n bytes, close.
 * Prints `PERF {"upload_bytes": received, "download_bytes": n}` once the upload is
 * drained (before the download starts), so tests check what arrived here.
 */
async function handlePerf (stream, conn, opts) {
  const reader = readerFor(stream, conn, opts)
  try {
    const header = await reader.readExactly(8)
    const n = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0)
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`perf: download size ${n} too large`)
    let received = 0
    let chunk
    while ((chunk = await reader.read()) !== null) received += chunk.byteLength
    print('PERF ' + JSON.stringify({ upload_bytes: received, download_bytes: Number(n) }))
    await writeZeros(stream, Number(n))
    await stream.close()
  } catch (err) {
    process.stderr.write(`warning: perf handler: ${describe(err)}\n`)
    stream.abort(err)
  }
}

// ---------------------------------------------------------------- dialer ops

function connInfo (conn, connectMs) {
  return {
    remote_peer: conn.remotePeer.toString(),
    encryption: conn.encryption ?? null,
    multiplexer: conn.multiplexer ?? null,
    connect_ms: round(connectMs)
  }
}

function streamOpts (opts, signal) {
  const o = { signal, negotiateFully: !opts.lazySelect }
  if (!opts.stockLimits) o.maxOutboundStreams = MAX_STREAMS
  return o
}

async function opPing (node, conn, opts, signal) {
  if (opts.count < 1) throw new Error('--count must be >= 1')
  const stream = await conn.newStream(PING, streamOpts(opts, signal))
  const reader = readerFor(stream, conn, opts)
  const rtts = []
  for (let i = 0; i < opts.count; i++) {
    const data = randomBytes(PING_SIZE)
    const t0 = performance.now()
    await write(stream, data)
    const back = await reader.readExactly(PING_SIZE)
    rtts.push(performance.now() - t0)
    if (!Buffer.from(back).equals(data)) throw new Error(`ping ${i}: payload mismatch`)
  }
  await stream.close()
  if ((await reader.read()) !== null) throw new Error('ping: data after the last pong')
  // js's own ping service too (one stream per ping, write + half-close, ms resolution).
  const serviceRtt = await node.services.ping.ping(conn.remoteAddr, { signal })
  const sorted = [...rtts].sort((a, b) => a - b)
  return {
    rtt_ms: rtts.map(round),
    median_ms: round(sorted[Math.floor(sorted.length / 2)]),
    service_rtt_ms: serviceRtt
  }
}

/** One echo stream: write `data`, half-close, read everything back, compare sha256. */
async function echoOnce (conn, opts, signal, data) {
  const stream = await conn.newStream(ECHO, streamOpts(opts, signal))
  const reader = readerFor(stream, conn, opts)
  const reading = (async () => {
    const hash = createHash('sha256')
    let n = 0
    let chunk
    while ((chunk = await reader.read()) !== null) {
      hash.update(chunk)
      n += chunk.byteLength
    }
    return { n, digest: hash.digest('hex') }
  })()
  await write(stream, data)
  await stream.close()
  const got = await reading
  const want = createHash('sha256').update(data).digest('hex')
  if (got.n !== data.byteLength || got.digest !== want) {
    throw new Error(`echo mismatch: sent ${data.byteLength} bytes sha256 ${want}, got ${got.n} bytes sha256 ${got.digest}`)
  }
}

async function opEcho (node, conn, opts, signal) {
  if (opts.streams < 1) throw new Error('--streams must be >= 1')
  const payloads = Array.from({ length: opts.streams }, () => randomBytes(opts.bytes))
  const t0 = performance.now()
  await Promise.all(payloads.map((data) => echoOnce(conn, opts, signal, data)))
  return { ok: true, streams: opts.streams, bytes: opts.bytes, seconds: round((performance.now() - t0) / 1000, 4) }
}

/** One stream, `--bytes` random bytes echoed back, hashed on both sides (no full copy kept). */
async function opTransfer (node, conn, opts, signal) {
  const stream = await conn.newStream(ECHO, streamOpts(opts, signal))
  const reader = readerFor(stream, conn, opts)
  const sent = createHash('sha256')
  const t0 = performance.now()
  const reading = (async () => {
    const hash = createHash('sha256')
    let n = 0
    let chunk
    while ((chunk = await reader.read()) !== null) {
      hash.update(chunk)
      n += chunk.byteLength
    }
    return { n, digest: hash.digest('hex') }
  })()
  const block = 1024 * 1024
  for (let off = 0; off < opts.bytes; off += block) {
    const data = randomBytes(Math.min(block, opts.bytes - off))
    sent.update(data)
    await write(stream, data)
  }
  await stream.close()
  const got = await reading
  const seconds = (performance.now() - t0) / 1000
  const want = sent.digest('hex')
  if (got.n !== opts.bytes || got.digest !== want) {
    throw new Error(`transfer mismatch: sent ${opts.bytes} bytes sha256 ${want}, got ${got.n} bytes sha256 ${got.digest}`)
  }
  return { ok: true, bytes: opts.bytes, sha256: want, seconds: round(seconds, 4), MBps: round(opts.bytes / 1e6 / seconds) }
}

async function opPerf (node, conn, opts, signal) {
  const stream = await conn.newStream(PERF, streamOpts(opts, signal))
  const reader = readerFor(stream, conn, opts)
  const header = new Uint8Array(8)
  new DataView(header.buffer).setBigUint64(0, BigInt(opts.download))
  const t0 = performance.now()
  await write(stream, header)
  await writeZeros(stream, opts.upload)
  await stream.close()
  let chunk = await reader.read()
  const t1 = performance.now()
  let got = 0
  while (chunk !== null) {
    got += chunk.byteLength
    chunk = await reader.read()
  }
  const t2 = performance.now()
  if (got !== opts.download) throw new Error(`perf: asked for ${opts.download} bytes, got ${got}`)
  const upS = (t1 - t0) / 1000
  const downS = (t2 - t1) / 1000
  return {
    upload_bytes: opts.upload,
    upload_seconds: round(upS, 4),
    upload_MBps: upS > 0 ? round(opts.upload / 1e6 / upS) : null,
    download_bytes: got,
    download_seconds: round(downS, 4),
    download_MBps: downS > 0 ? round(got / 1e6 / downS) : null
  }
}

function identifyJson (result) {
  let keyType = null
  if (result.publicKey != null) {
    try {
      keyType = publicKeyFromProtobuf(result.publicKey).type
    } catch (err) {
      keyType = `unparseable: ${describe(err)}`
    }
  }
  return {
    peer_id: result.peerId.toString(),
    agent_version: result.agentVersion ?? null,
    protocol_version: result.protocolVersion ?? null,
    protocols: [...result.protocols].sort(),
    listen_addrs: result.listenAddrs.map(String),
    observed_addr: result.observedAddr == null ? null : String(result.observedAddr),
    public_key_type: keyType,
    signed_peer_record: result.signedPeerRecord != null
  }
}

async function opIdentify (node, conn, opts, signal) {
  const result = await node.services.identify.identify(conn, { signal })
  const out = identifyJson(result)
  if (out.peer_id !== conn.remotePeer.toString()) {
    throw new Error(`identify: peer id ${out.peer_id} is not the connection's ${conn.remotePeer}`)
  }
  return out
}

const DIAL_OPS = { ping: opPing, echo: opEcho, perf: opPerf, identify: opIdentify, transfer: opTransfer }

async function runDialer (opts) {
  const signal = AbortSignal.timeout(opts.timeoutMs)
  // One deadline shared by every stream of the op (100+ listeners).
  setMaxListeners(Infinity, signal)
  const hardStop = setTimeout(() => {
    process.stderr.write(`error: ${opts.op} timed out after ${opts.timeoutMs / 1000} s\n`)
    process.exit(3)
  }, opts.timeoutMs + 5000)
  hardStop.unref()
  let node
  try {
    const target = multiaddr(opts.target)
    node = await createNode(opts, { listen: [], identifyOnConnect: opts.op !== 'identify' })
    phase('node created')
    const t0 = performance.now()
    const conn = await node.dial(target, { signal })
    const connectMs = performance.now() - t0
    const result = await DIAL_OPS[opts.op](node, conn, opts, signal)
    process.stdout.write(JSON.stringify({ ...result, ...connInfo(conn, connectMs) }) + '\n')
    phase('op done')
  } catch (err) {
    process.stderr.write(`error: ${opts.op}: ${describe(err)}\n`)
    if (node != null) await stopNode(node, 1000)
    process.exit(1)
  }
  await stopNode(node)
  phase('stopped')
  process.exit(unhandled > 0 ? 70 : 0)
}

// ---------------------------------------------------------------- listener

async function runListener (opts) {
  const node = await createNode(opts, { listen: opts.listen })
  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    print('CONNECTION ' + JSON.stringify({
      direction: c.direction,
      remote_peer: c.remotePeer.toString(),
      remote_addr: String(c.remoteAddr),
      encryption: c.encryption ?? null,
      multiplexer: c.multiplexer ?? null
    }))
  })
  let pushTestAdded = false
  node.addEventListener('peer:identify', (evt) => {
    print('IDENTIFY ' + JSON.stringify(identifyJson(evt.detail)))
    if (opts.identifyPush && !pushTestAdded) {
      // Change our protocols once, after the first peer identified us: identify-push
      // then pushes the new list to every connected peer (tests push js -> peer).
      pushTestAdded = true
      setTimeout(() => {
        node.handle(PUSH_TEST, (stream) => { stream.abort(new Error('push test only')) }, { runOnLimitedConnection: true })
          .catch((err) => process.stderr.write(`handle ${PUSH_TEST}: ${err}\n`))
      }, 200)
    }
  })
  let stopping = false
  const shutdown = async (sig) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`${sig}: stopping\n`)
    await stopNode(node)
    process.exit(unhandled > 0 ? 70 : 0)
  }
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('SIGINT', () => { shutdown('SIGINT') })
  for (const addr of node.getMultiaddrs()) print(`LISTEN ${addr}`)
}

// ---------------------------------------------------------------- misc

// A js-internal error that nobody awaited: report it and make the exit code
// say so (70) instead of crashing mid-test, so the harness shows it.
let unhandled = 0
process.on('unhandledRejection', (err) => {
  unhandled++
  process.stderr.write(`UNHANDLED REJECTION: ${describe(err)}\n${err?.stack ?? ''}\n`)
})

/** PEER_TIMING=1: where a dialer op spends its time (stderr, ms since process start). */
function phase (name) {
  if (process.env.PEER_TIMING === '1') process.stderr.write(`timing: ${name} at ${performance.now().toFixed(0)} ms\n`)
}

function print (line) {
  // stdout to a pipe is synchronous on Linux: every line is flushed at once.
  process.stdout.write(line + '\n')
}

function round (x, digits = 3) {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function describe (err) {
  if (err == null) return String(err)
  const name = err.name ?? 'Error'
  const msg = String(err.message ?? err).replace(/\s+/g, ' ')
  return `${name}: ${msg}`
}

const opts = parse(process.argv.slice(2))
if (opts.op === 'listen') {
  runListener(opts).catch((err) => {
    process.stderr.write(`error: listen: ${describe(err)}\n`)
    process.exit(1)
  })
} else {
  runDialer(opts)
}
