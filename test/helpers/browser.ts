import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import type { Test } from 'tap'

// Debian's chromium, driven by playwright-core (.ci/run installs both). The flags keep a root,
// headless chromium on a machine without a network from reaching out (see the machine's notes).
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** A headless chromium, closed when the test ends. */
export async function launchChromium (t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}; .ci/run installs the Debian package chromium`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
  t.teardown(async () => await browser.close())
  return browser
}
