// Bundle app.js for the browser: `node build.mjs <out dir>` writes
// <out dir>/bundle.js and copies index.html next to it.
//
// platform 'browser' makes esbuild follow the packages' "browser" fields, so
// the bundle gets js-libp2p's browser code paths (the browser connection
// gater, the WebSocket transport without a listener), exactly what a web
// application built from these npm packages runs.
import { copyFile, mkdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2]
if (out == null) {
  process.stderr.write('usage: node build.mjs <out dir>\n')
  process.exit(2)
}
await mkdir(out, { recursive: true })
const result = await build({
  entryPoints: [join(here, 'app.js')],
  outfile: join(out, 'bundle.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning'
})
await copyFile(join(here, 'index.html'), join(out, 'index.html'))
const { size: bytes } = await stat(join(out, 'bundle.js'))
process.stdout.write(JSON.stringify({ bundle: join(out, 'bundle.js'), bytes }) + '\n')
