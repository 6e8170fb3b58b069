import { mkdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import http from 'node:http'
import t from 'tap'
import { launchChromium } from './helpers/browser.js'
import { startCluster } from './helpers/cluster.js'
import { get } from './helpers/http.js'

async function cell (page: Page, slot: string, name: string): Promise<string> {
  return (await page.locator(`tr[data-slot="${slot}"] td.${name}`).textContent()) ?? ''
}

t.test('the status page shows both workers live: a kill -9 and a rolling reload appear without reloading the page', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { token: 'page-token', sampleInterval: 200 } })
  const browser = await launchChromium(t)
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
  t.match(await page.locator('#store').textContent(), /^0 sessions \(0 empty\) from 0 clients, 0\.0 MiB, 0 rate-limit counters; none evicted$/, 'the primary store\'s line')
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
  await page.locator('#events li', { hasText: `worker 0 (pid ${victim}) crashed: killed by SIGKILL from outside the kit` }).waitFor()
  await page.locator(`#incidents li[data-pid="${victim}"]`, { hasText: 'signal  killed by SIGKILL from outside the kit' }).waitFor()
  t.notMatch(await page.locator('#events').textContent(), /\{"/, 'events read as words, not JSON')

  const before = [await cell(page, '0', 'pid'), await cell(page, '1', 'pid')]
  await page.locator('#reload').click()
  await page.locator('#reload-result', { hasText: '401' }).waitFor()
  t.pass('without the token the reload is refused and the page says so')
  await page.locator('#token').fill('page-token')
  await page.locator('#token').dispatchEvent('change')
  await page.locator('#reload').click()
  await page.locator('#reload-result', { hasText: 'reloading 2 workers' }).waitFor()
  await page.locator('#last-reload', { hasText: /^ok in \d+ ms/ }).waitFor({ timeout: 60_000 })
  await page.waitForFunction('document.querySelector("#reload-result").textContent === ""', undefined, { timeout: 10_000 })
  t.pass('no stale "reloading 2 workers" beside the button once the reload is done')
  await page.waitForFunction(`[...document.querySelectorAll('td.pid')].every((cell) => !${JSON.stringify(before)}.includes(cell.textContent)) &&
    [...document.querySelectorAll('td.state')].every((cell) => cell.textContent === 'ready')`, undefined, { timeout: 30_000 })
  t.pass('after the reload both rows show new pids, ready')
  // The charts draw the history points (one per sampleInterval) as one line per worker.
  await page.waitForFunction('[...document.querySelectorAll(\'#chart-rss polyline\')].filter((line) => line.getAttribute(\'points\').split(\' \').length >= 3).length >= 2',
    undefined, { timeout: 30_000 })
  t.pass('the RSS chart has a line per worker')
  // Filled from the workers' heartbeats and two history points: waited for, not read at once.
  await page.locator('tr[data-slot="0"] td.utilization', { hasText: /^\d+ %$/ }).waitFor()
  await page.locator('tr[data-slot="0"] td.rps', { hasText: /^\d+(\.\d)?$/ }).waitFor()
  await page.locator('tr[data-slot="0"] td.inflight', { hasText: /^\d+$/ }).waitFor()
  t.pass('event-loop utilisation, requests/s and in-flight columns')

  const folder = join(tmpdir(), 'fastify-cluster-kit-screenshots')
  mkdirSync(folder, { recursive: true })
  for (const colorScheme of ['light', 'dark'] as const) {
    for (const width of [1280, 390]) {
      await page.emulateMedia({ colorScheme })
      await page.setViewportSize({ width, height: width > 500 ? 900 : 844 })
      const path = join(folder, `status-${colorScheme}-${width}.png`)
      await page.screenshot({ path, fullPage: true })
      t.ok(statSync(path).size > 10_000, `${path} written`)
    }
  }
  // On a phone's width the page fits; only the table scrolls sideways, inside its own box.
  t.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true, 'no sideways scrolling of the page at 390 px')
  t.comment(`screenshots (light and dark, 1280 and 390 px wide): ${folder}`)
  t.same(errors, [], 'no script error on the page')
  t.same(requests.filter((url) => !url.startsWith(`http://127.0.0.1:${cluster.monitoringPort}/`)), [], 'nothing loaded from elsewhere')
})

t.test('opened after a reload, the page shows it at once: its first render is the server\'s state', async (t) => {
  const cluster = await startCluster(t)
  const reload = await cluster.call('reload')
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  await page.goto(`http://127.0.0.1:${cluster.monitoringPort}/`)
  await page.locator('tr[data-slot="1"] td.state.ready').waitFor()
  t.match(await page.locator('#last-reload').textContent(), new RegExp(`^ok in ${reload.durationMs} ms at `), 'the last reload, from the first stats sample')
  t.same([await cell(page, '0', 'restarts'), await cell(page, '1', 'restarts')], ['0', '0'], 'a reload is not a restart, on the page as in stats')
})

t.test('a hung worker\'s incident on the status page: the reason and the frames where its main thread was', async (t) => {
  const cluster = await startCluster(t, {}, { heartbeatTimeout: 1000, restartWindow: 0 })
  const browser = await launchChromium(t)
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } })
  await page.goto(`http://127.0.0.1:${cluster.monitoringPort}/`)
  await page.locator('tr[data-slot="1"] td.state.ready').waitFor()
  t.equal(await page.locator('#incidents').textContent(), 'none')
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const victim = Number((await get(cluster.port, '/', agent)).headers['x-worker-pid'])
  get(cluster.port, '/incident/spin', agent).catch(() => undefined)
  const incident = page.locator(`#incidents li[data-pid="${victim}"]`)
  await incident.waitFor({ timeout: 30_000 })
  t.match(await incident.locator('div').textContent(), /worker \d \(pid \d+\) {2}hang {2}no heartbeat for \d+ ms \(heartbeatTimeout 1000 ms\); its main thread was in hashPassword/)
  t.match(await incident.locator('ol li').first().textContent(), /^hashPassword {2}test\/fixtures\/routes\/incidents\.mjs:7:\d+$/, 'its frames, the top one first')
  const shot = join(tmpdir(), `fck-status-incident-${process.pid}.png`)
  await page.screenshot({ path: shot, fullPage: true })
  t.ok(statSync(shot).size > 10_000, `a screenshot of it: ${shot}`)
})
