import { existsSync } from 'node:fs'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import { startCluster } from './helpers/cluster.js'

// Debian's chromium, driven by playwright-core (.ci/run installs both). The flags keep a root,
// headless chromium on a machine without a network from reaching out (see the machine's notes).
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

async function cell (page: Page, slot: string, name: string): Promise<string> {
  return (await page.locator(`tr[data-slot="${slot}"] td.${name}`).textContent()) ?? ''
}

t.test('the status page shows both workers live: a kill -9 and a rolling reload appear without reloading the page', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}; .ci/run installs the Debian package chromium`)
  const cluster = await startCluster(t, {}, { monitoring: { token: 'page-token', sampleInterval: 200 } })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
  t.teardown(async () => await browser.close())
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  const requests: string[] = []
  page.on('request', (request) => requests.push(request.url()))

  await page.goto(`http://127.0.0.1:${cluster.monitoringPort}/`)
  await page.locator('tr[data-slot="1"] td.state.ready').waitFor()
  t.equal(await page.locator('#workers tr').count(), 2, 'one row per worker')
  t.equal(await page.locator('#alive').textContent(), '2')
  t.equal(await page.locator('#health').textContent(), 'healthy')
  const stats = await cluster.call('stats')
  t.same([await cell(page, '0', 'pid'), await cell(page, '1', 'pid')], stats.workers.map((worker: any) => String(worker.pid)))

  const victim = String(stats.workers[0].pid)
  process.kill(Number(victim), 'SIGKILL')
  // Evaluated in the page (the tests' TypeScript has no DOM types, hence a string).
  await page.waitForFunction(`(() => {
    const row = document.querySelector('tr[data-slot="0"]')
    return row?.querySelector('td.restarts')?.textContent === '1' && row.querySelector('td.state')?.textContent === 'ready' &&
      row.querySelector('td.pid')?.textContent !== '${victim}'
  })()`, undefined, { timeout: 30_000 })
  t.equal(await cell(page, '0', 'restarts'), '1', 'its restarts went to 1')
  t.not(await cell(page, '0', 'pid'), victim, 'and its pid changed')
  await page.locator('#events li', { hasText: 'worker:exit' }).first().waitFor()

  const before = [await cell(page, '0', 'pid'), await cell(page, '1', 'pid')]
  await page.locator('#reload').click()
  await page.locator('#reload-result', { hasText: '401' }).waitFor()
  t.pass('without the token the reload is refused and the page says so')
  await page.locator('#token').fill('page-token')
  await page.locator('#token').dispatchEvent('change')
  await page.locator('#reload').click()
  await page.locator('#reload-result', { hasText: 'reloading 2 workers' }).waitFor()
  await page.locator('#last-reload', { hasText: /^ok in \d+ ms/ }).waitFor({ timeout: 60_000 })
  await page.waitForFunction(`[...document.querySelectorAll('td.pid')].every((cell) => !${JSON.stringify(before)}.includes(cell.textContent)) &&
    [...document.querySelectorAll('td.state')].every((cell) => cell.textContent === 'ready')`, undefined, { timeout: 30_000 })
  t.pass('after the reload both rows show new pids, ready')
  t.same(errors, [], 'no script error on the page')
  t.same(requests.filter((url) => !url.startsWith(`http://127.0.0.1:${cluster.monitoringPort}/`)), [], 'nothing loaded from elsewhere')
})
