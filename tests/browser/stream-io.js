// Stream I/O over js-libp2p 3.x streams ('message' events, send() + 'drain'),
// shared by the page (app.js), the Node listener (js-listener.mjs) and the
// interop peer (tests/interop/js/peer.mjs). No imports: esbuild bundles it for
// the page, and Node loads it from either folder.

export const CHUNK = 64 * 1024

/** Yield the Uint8Array chunks of a Uint8Array or Uint8ArrayList. */
function * chunksOf (data) {
  if (data instanceof Uint8Array) yield data
  else yield * data
}

/**
 * Pull-mode reader over a js MessageStream.
 *
 * Why not `for await (const x of stream)`: js ends that iterator on
 * 'remoteCloseWrite' even when data is still buffered in a paused stream, so an
 * echo that pauses for backpressure loses the tail. Why not just the 'end'
 * event: when the remote's FIN arrives while multistream-select still holds
 * the stream, js emits 'end' and only then pushes the unread bytes back
 * (`unshift`), so 'end' can come *before* data and never again after it. EOF
 * is therefore "remote closed its write side and js holds no unread bytes",
 * re-checked after every message (like isEOF in @libp2p/utils).
 *
 * `pauseAt` (bytes, 0: never) pauses the stream when that much is queued
 * unread and resumes it at half, so a flow-controlled muxer (yamux) makes the
 * remote wait instead of js buffering everything.
 */
export class Reader {
  constructor (stream, { pauseAt = 0 } = {}) {
    this.stream = stream
    this.pauseAt = pauseAt
    this.queue = []
    this.queued = 0
    this.eof = false
    this.error = null
    this.wake = null
    const checkEof = () => {
      if (stream.remoteWriteStatus !== 'writable' && stream.readBufferLength === 0) this.eof = true
      this.notify()
    }
    stream.addEventListener('message', (evt) => {
      for (const chunk of chunksOf(evt.data)) {
        this.queue.push(chunk)
        this.queued += chunk.byteLength
      }
      if (this.pauseAt > 0 && this.queued > this.pauseAt) {
        // Deferred: this handler can run inside stream.resume(), which calls
        // sendResume() (yamux: state Established, window update) right after
        // dispatching; a pause() from here would be silently undone and the
        // remote would get fresh window while we think the stream is paused.
        queueMicrotask(() => {
          if (this.queued > this.pauseAt && stream.readStatus === 'readable') stream.pause()
        })
      }
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

  /** Next chunk, or null at EOF; throws if the stream was reset/aborted. */
  async read () {
    while (this.queue.length === 0) {
      if (this.error != null) throw this.error
      if (this.eof) return null
      await new Promise((resolve) => { this.wake = resolve })
    }
    const chunk = this.queue.shift()
    this.queued -= chunk.byteLength
    if (this.queued <= this.pauseAt / 2 && this.stream.readStatus === 'paused') this.stream.resume()
    return chunk
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
      if (take < chunk.byteLength) {
        const rest = chunk.subarray(take)
        this.queue.unshift(rest)
        this.queued += rest.byteLength
      }
    }
    return out
  }
}

/**
 * Wait for 'drain' (or fail on 'close'): send() returned false. Not
 * stream.onDrain(): in @libp2p/utils 7.x its promise is created once per
 * stream and never reset, so from the second call on it resolves at once and
 * backpressure is lost.
 */
export function waitDrain (stream) {
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

/** Send with backpressure: wait for 'drain' whenever send() says so. */
export async function write (stream, data) {
  for (let off = 0; off < data.byteLength; off += CHUNK) {
    if (!stream.send(data.subarray(off, off + CHUNK))) await waitDrain(stream)
  }
}
