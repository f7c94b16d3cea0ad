// The web page's js-libp2p client (bundled for the browser by build.mjs).
//
// index.html?maddr=<multiaddr with /ws and /p2p>&bytes=<echo size>&pings=<count>
//
// Dials the multiaddr over WebSocket (Noise + Yamux), pings it on
// /ipfs/ping/1.0.0 (by hand, timed with performance.now(), and once through
// @libp2p/ping's service), echoes `bytes` random bytes on /echo/1.0.0 with a
// half-close, and publishes what happened as `window.result` (also logged as
// one `RESULT {json}` console line and shown in the page). The test reads
// window.result; the page never decides pass or fail on its own beyond
// reporting `ok: false` with the step that threw.

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CHUNK, Reader, write } from './stream-io.js'

const PING = '/ipfs/ping/1.0.0'
const ECHO = '/echo/1.0.0'
const PING_SIZE = 32
const TIMEOUT_MS = 45_000

/**
 * Let the page dial loopback addresses only, /ws included.
 *
 * Why: in a browser, js-libp2p's default connection gater refuses every
 * insecure `/ws` address and every private address (browsers complain loudly
 * about plain WebSockets, and a web page usually cannot reach private networks
 * anyway). A p2pkit node on this machine is both, so the test page opts in for
 * loopback only; a page on the open web dials `/tls/ws` to a public address
 * and needs no gater at all.
 */
function denyDialMultiaddr (ma) {
  const [first] = ma.getComponents()
  if (first?.name === 'ip4') return !first.value.startsWith('127.')
  if (first?.name === 'ip6') return first.value !== '::1'
  return !(first?.name?.startsWith('dns') && first.value === 'localhost')
}

/** n random bytes (crypto.getRandomValues fills at most 64 KiB per call). */
function randomBytes (n) {
  const out = new Uint8Array(n)
  for (let off = 0; off < n; off += CHUNK) crypto.getRandomValues(out.subarray(off, off + CHUNK))
  return out
}

async function sha256 (data) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** `count` pings on one /ipfs/ping/1.0.0 stream, each timed with performance.now(). */
async function pingByHand (conn, count, signal) {
  const stream = await conn.newStream(PING, { signal })
  const reader = new Reader(stream)
  const rtts = []
  for (let i = 0; i < count; i++) {
    const data = randomBytes(PING_SIZE)
    const t0 = performance.now()
    await write(stream, data)
    const back = await reader.readExactly(PING_SIZE)
    rtts.push(performance.now() - t0)
    if (back.some((b, j) => b !== data[j])) throw new Error(`ping ${i}: payload mismatch`)
  }
  await stream.close({ signal })
  return rtts
}

/** Write `data` on /echo/1.0.0, half-close, read everything back; hash both sides. */
async function echo (conn, data, signal) {
  const stream = await conn.newStream(ECHO, { signal })
  const reader = new Reader(stream)
  const t0 = performance.now()
  const reading = (async () => {
    const back = new Uint8Array(data.byteLength)
    let n = 0
    let chunk
    while ((chunk = await reader.read()) !== null) {
      if (n + chunk.byteLength > back.byteLength) throw new Error(`echo: more than ${back.byteLength} bytes came back`)
      back.set(chunk, n)
      n += chunk.byteLength
    }
    return back.subarray(0, n)
  })()
  await write(stream, data)
  await stream.close({ signal })
  const back = await reading
  const ms = performance.now() - t0
  return {
    sent_bytes: data.byteLength,
    received_bytes: back.byteLength,
    sent_sha256: await sha256(data),
    received_sha256: await sha256(back),
    ms
  }
}

function describe (err) {
  if (err == null) return String(err)
  // A WebSocket that fails to open rejects with its 'error' Event, which says nothing;
  // the browser logs the reason (e.g. net::ERR_CERT_AUTHORITY_INVALID) to the console.
  if (err instanceof Event) return `${err.type} event from ${err.target?.url ?? err.target} (reason in the console)`
  return `${err.name ?? 'Error'}: ${String(err.message ?? err).replace(/\s+/g, ' ')}`
}

function publish (result) {
  window.result = result
  console.log('RESULT ' + JSON.stringify(result))
  document.getElementById('report').textContent = JSON.stringify(result, null, 2)
}

async function main () {
  const params = new URLSearchParams(location.search)
  const bytes = Number(params.get('bytes') ?? 1024 * 1024)
  const pings = Number(params.get('pings') ?? 5)
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  let step = 'parse the multiaddr'
  let node
  try {
    const target = multiaddr(params.get('maddr') ?? '')
    step = 'create the node'
    node = await createLibp2p({
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr },
      services: { ping: ping() }
    })
    step = 'dial'
    const t0 = performance.now()
    const conn = await node.dial(target, { signal })
    const connectMs = performance.now() - t0
    step = 'ping'
    const rtts = await pingByHand(conn, pings, signal)
    step = 'ping service'
    const serviceRtt = await node.services.ping.ping(conn.remoteAddr, { signal })
    step = 'echo'
    const echoed = await echo(conn, randomBytes(bytes), signal)
    publish({
      ok: true,
      user_agent: navigator.userAgent,
      remote_peer: conn.remotePeer.toString(),
      remote_addr: String(conn.remoteAddr),
      encryption: conn.encryption ?? null,
      multiplexer: conn.multiplexer ?? null,
      connect_ms: connectMs,
      ping_rtt_ms: rtts,
      ping_service_rtt_ms: serviceRtt,
      echo: echoed
    })
  } catch (err) {
    publish({ ok: false, step, error: describe(err), stack: err?.stack ?? null })
  } finally {
    await node?.stop().catch(() => {})
  }
}

main()
