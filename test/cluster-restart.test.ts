import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startCluster } from './helpers/cluster.js'
import { get } from './helpers/http.js'

t.test('a worker that throws at start is restarted with growing delays, then given up; the rest serves', async (t) => {
  const failFile = join(tmpdir(), `fck-fail-${process.pid}-${Date.now()}`)
  t.teardown(() => rmSync(failFile, { force: true }))
  const cluster = await startCluster(t, { FIXTURE_FAIL_FILE: failFile, FIXTURE_FAIL_SLOT: '1' },
    { maxRestarts: 3, restartDelay: 100, restartWindow: 60_000 })
  const { workers } = await cluster.call('stats')
  writeFileSync(failFile, 'slot 1 must fail from now on')
  process.kill(workers[1].pid, 'SIGKILL')

  const limit = await cluster.waitForEvent((event) => event.event === 'restart-limit')
  t.match(limit, { id: '1', earlyCrashes: 4 })
  const restarts = cluster.events().filter((event) => event.event === 'worker:restart')
  t.same(restarts.map((event) => event.delay), [100, 200, 400], 'back-off doubles from restartDelay')
  t.same(restarts.map((event) => event.restarts), [1, 2, 3])
  const exits = cluster.events().filter((event) => event.event === 'worker:exit' && event.id === '1')
  t.equal(exits.length, 4, 'the killed worker and three failed restarts')
  t.match(exits.at(-1), { code: 1, state: 'crashed', reason: /failed to start: slot 1 refuses to start/ })

  const health = await cluster.call('health')
  t.match(health, { status: 'degraded', healthy: false, alive: 1, expected: 2 })
  t.match(health.warnings, [/worker 1 gave up/])
  t.match(cluster.events().find((event) => event.event === 'unhealthy'), { status: 'degraded' })
  const stats = await cluster.call('stats')
  t.match(stats.workers, [{ id: '0', state: 'ready', restarts: 0 }, { id: '1', state: 'given-up', restarts: 3, pid: null }])
  for (let i = 0; i < 5; i++) {
    const response = await get(cluster.port, '/')
    t.equal(response.status, 200)
    t.equal(response.headers['x-worker-id'], '0', 'slot 0 serves')
  }
  t.ok(cluster.child.exitCode === null, 'the primary stays up')

  // Fixed code, rolled out with a reload, brings the given-up slot back.
  rmSync(failFile)
  t.match(await cluster.call('reload'), { ok: true })
  t.match(await cluster.call('health'), { status: 'ok', alive: 2, warnings: [] })
  t.match(cluster.events().find((event) => event.event === 'healthy'), { status: 'ok' })
  t.match((await cluster.call('stats')).workers, [{ id: '0', state: 'ready' }, { id: '1', state: 'ready' }])
})
