import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t from 'tap'
import { startCluster, waitGone } from './helpers/cluster.js'
import { get } from './helpers/http.js'

const pidsOf = (stats: any): string[] => stats.workers.map((worker: any) => String(worker.pid))

t.test('rolling reload under keep-alive load: every pid changes, 0 errors, 0 non-2xx', async (t) => {
  const cluster = await startCluster(t)
  const before = pidsOf(await cluster.call('stats'))
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 50, duration: 6 })
  await sleep(1000)
  const result = await cluster.call('reload')
  const loadResult = await load

  t.match(result, { ok: true, workers: [{ id: '0' }, { id: '1' }] })
  const after = pidsOf(await cluster.call('stats'))
  t.equal(after.filter((pid) => before.includes(pid)).length, 0, `every worker pid changed (${before} -> ${after})`)
  t.equal(loadResult.errors, 0, 'no connection error')
  t.equal(loadResult.timeouts, 0, 'no timeout')
  t.equal(loadResult.non2xx, 0, 'no non-2xx answer')
  t.ok(loadResult.requests.total > 1000, `${loadResult.requests.total} requests during the reload`)
  t.match(cluster.events().filter((event) => event.event === 'worker:exit'), [{ state: 'retired' }, { state: 'retired' }])
  t.ok(cluster.events().some((event) => event.event === 'reload:done'))
  const retired = before.map(Number)
  t.same(await waitGone(retired), [], 'the old workers are gone')
})

t.test('a reload whose new code fails to start keeps serving from the old workers', async (t) => {
  const failFile = join(tmpdir(), `fck-reload-${process.pid}-${Date.now()}`)
  t.teardown(() => rmSync(failFile, { force: true }))
  const cluster = await startCluster(t, { FIXTURE_FAIL_FILE: failFile }, { readyTimeout: 5000 })
  const before = pidsOf(await cluster.call('stats'))
  writeFileSync(failFile, 'new code is broken')
  const result = await cluster.call('reload')
  t.match(result, { ok: false, reason: /worker 0: replacement failed to start: slot 0 refuses to start/ })
  t.match(cluster.events().find((event) => event.event === 'reload:failed'), { reason: /slot 0 refuses to start/ })
  t.same(pidsOf(await cluster.call('stats')), before, 'the old workers still hold their slots')
  t.match(await cluster.call('health'), { status: 'ok', alive: 2 })
  for (let i = 0; i < 4; i++) {
    const response = await get(cluster.port, '/')
    t.equal(response.status, 200)
    t.ok(before.includes(String(response.headers['x-worker-pid'])), 'answered by an old worker')
  }
})

t.test('a reload asked for while one runs is refused; SIGHUP reloads', async (t) => {
  const cluster = await startCluster(t)
  const before = pidsOf(await cluster.call('stats'))
  const first = cluster.call('reload')
  await cluster.waitForEvent((event) => event.event === 'reload:start')
  await t.rejects(cluster.call('reload'), { code: 'FCK_RELOAD_IN_PROGRESS', message: /already running/ })
  t.match(await first, { ok: true })
  const middle = pidsOf(await cluster.call('stats'))
  cluster.child.kill('SIGHUP')
  await cluster.waitForEvent((event) => event.event === 'reload:done' && event.workers.every((worker: any) => !middle.includes(String(worker.pid))))
  t.equal(pidsOf(await cluster.call('stats')).filter((pid) => before.includes(pid) || middle.includes(pid)).length, 0)
})
