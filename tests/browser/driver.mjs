// Open pages in headless Chromium and print what each one reports.
//
//   node driver.mjs --chromium /usr/bin/chromium --profile DIR [--timeout S]
//                   [--trust-spki BASE64] URL...
//
// One browser for all URLs (start-up is the slow part), one fresh page per URL.
// Per URL it prints `RESULT {"url": .., "result": <window.result>}` on stdout
// once the page has set window.result (or `"result": null` plus `"error"` if it
// did not within the timeout); every console message and page error goes to
// stderr as `CONSOLE <url> <type>: <text>`. Exit 0 when every page reported,
// 1 otherwise. Whether what a page reported is right is the test's business.
//
// playwright-core drives the system's Chromium (Debian's package): it never
// downloads a browser of its own.

import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    profile: { type: 'string' },
    timeout: { type: 'string', default: '60' },
    'trust-spki': { type: 'string' }
  }
})
if (values.profile == null || positionals.length === 0) {
  process.stderr.write('usage: node driver.mjs --chromium PATH --profile DIR [--timeout S] URL...\n')
  process.exit(2)
}
const timeoutMs = Number(values.timeout) * 1000

// A last resort: whatever hangs, the process ends and says so.
const hardStop = setTimeout(() => {
  process.stderr.write(`error: driver did not finish within ${values.timeout} s\n`)
  process.exit(3)
}, timeoutMs * positionals.length + 30_000)
hardStop.unref()

// Why each flag: a quiet, sandbox-free (containers, root) browser that talks to
// nothing but the pages we open.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

// --trust-spki: accept TLS certificates with this public key (base64 SHA-256 of the
// SubjectPublicKeyInfo) whoever signed them; Chromium honours the flag only with a
// --user-data-dir, which the persistent context gives it.
const trust = values['trust-spki'] == null ? [] : [`--ignore-certificate-errors-spki-list=${values['trust-spki']}`]

const context = await chromium.launchPersistentContext(values.profile, {
  executablePath: values.chromium,
  headless: true,
  args: [...FLAGS, ...trust],
  timeout: timeoutMs
})
let failures = 0
try {
  for (const url of positionals) {
    const page = await context.newPage()
    page.on('console', (msg) => process.stderr.write(`CONSOLE ${url} ${msg.type()}: ${msg.text()}\n`))
    page.on('pageerror', (err) => process.stderr.write(`CONSOLE ${url} pageerror: ${err.stack ?? err}\n`))
    const line = { url, result: null }
    try {
      await page.goto(url, { timeout: timeoutMs })
      await page.waitForFunction(() => window.result !== undefined, null, { timeout: timeoutMs, polling: 100 })
      line.result = await page.evaluate(() => window.result)
    } catch (err) {
      failures++
      line.error = `${err.name}: ${err.message}`
    }
    process.stdout.write('RESULT ' + JSON.stringify(line) + '\n')
    await page.close()
  }
} finally {
  await context.close()
}
process.exit(failures === 0 ? 0 : 1)
