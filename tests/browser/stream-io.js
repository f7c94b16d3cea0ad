// Stream I/O over js-libp2p 3.x streams ('message' events, send() + 'drain'),
// shared by the page (app.js) and the Node listener (js-listener.mjs).

export const CHUNK = 64 * 1024

/** Yield the Uint8Array chunks of a Uint8Array or Uint8ArrayList. */
function * chunksOf (data) {
  if (data instanceof Uint8Array) yield data
  else yield * data
}

/**
 * Pull-mode reader over a js-libp2p stream ('message' events).
 *
 * EOF is "the remote closed its write side and nothing unread is left",
 * re-checked after every message: js can signal the remote's close before it
 * has handed over the last bytes (see tests/interop/js/peer.mjs, Reader).
 */
export class Reader {
  constructor (stream) {
    this.stream = stream
    this.queue = []
    this.eof = false
    this.error = null
    this.wake = null
    const checkEof = () => {
      if (stream.remoteWriteStatus !== 'writable' && stream.readBufferLength === 0) this.eof = true
      this.notify()
    }
    stream.addEventListener('message', (evt) => {
      for (const chunk of chunksOf(evt.data)) this.queue.push(chunk)
      checkEof()
    })
    stream.addEventListener('remoteCloseWrite', checkEof)
    stream.addEventListener('end', checkEof)
    stream.addEventListener('close', (evt) => {
      if (evt.error != null) this.error = evt.error
      this.eof = true
      this.notify()
    })
    checkEof()
  }

  notify () {
    const wake = this.wake
    this.wake = null
    wake?.()
  }

  /** Next chunk, or null at EOF; throws if the stream was reset. */
  async read () {
    while (this.queue.length === 0) {
      if (this.error != null) throw this.error
      if (this.eof) return null
      await new Promise((resolve) => { this.wake = resolve })
    }
    return this.queue.shift()
  }

  async readExactly (n) {
    const out = new Uint8Array(n)
    let have = 0
    while (have < n) {
      const chunk = await this.read()
      if (chunk == null) throw new Error(`unexpected EOF after ${have}/${n} bytes`)
      const take = Math.min(chunk.byteLength, n - have)
      out.set(chunk.subarray(0, take), have)
      have += take
      if (take < chunk.byteLength) this.queue.unshift(chunk.subarray(take))
    }
    return out
  }
}

/** Wait for 'drain' (or fail on 'close'): send() returned false. */
function waitDrain (stream) {
  return new Promise((resolve, reject) => {
    const onDrain = () => { cleanup(); resolve() }
    const onClose = (evt) => { cleanup(); reject(evt.error ?? new Error('stream closed while waiting for drain')) }
    const cleanup = () => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

export async function write (stream, data) {
  for (let off = 0; off < data.byteLength; off += CHUNK) {
    if (!stream.send(data.subarray(off, off + CHUNK))) await waitDrain(stream)
  }
}
