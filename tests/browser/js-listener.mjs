// A js-libp2p node in Node.js listening on /ws: the page's second target.
//
//   node js-listener.mjs [--listen MADDR]
//
// Prints `LISTEN <maddr>/p2p/<id>` per address and serves /ipfs/ping/1.0.0 and
// /echo/1.0.0 (echo until EOF, then close the write side) until SIGTERM/SIGINT.
// The browser test runs the same page against it and against p2pkit, so a
// failure that only p2pkit shows is p2pkit's, and one both show is the page's.

// MUST stay the first import: js-libp2p calls Promise.withResolvers (Node 22+).
import '../interop/js/polyfill.mjs'

import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { Reader, write } from './stream-io.js'

const { values } = parseArgs({ options: { listen: { type: 'string', default: '/ip4/127.0.0.1/tcp/0/ws' } } })

const node = await createLibp2p({
  addresses: { listen: [values.listen] },
  transports: [webSockets()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { ping: ping() }
})
await node.handle('/echo/1.0.0', async (stream) => {
  const reader = new Reader(stream)
  try {
    let chunk
    while ((chunk = await reader.read()) !== null) await write(stream, chunk)
    await stream.close()
  } catch (err) {
    process.stderr.write(`warning: echo handler: ${err}\n`)
    stream.abort(err)
  }
})

let stopping = false
const shutdown = async () => {
  if (stopping) return
  stopping = true
  await Promise.race([node.stop(), new Promise((resolve) => setTimeout(resolve, 3000))])
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
for (const addr of node.getMultiaddrs()) process.stdout.write(`LISTEN ${addr}\n`)
