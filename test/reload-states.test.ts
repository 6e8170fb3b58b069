import t from 'tap'
import { processesMatchStats, startCluster } from './helpers/cluster.js'
import { send } from './helpers/http.js'

t.test('a reload while a slot drains on its own: ok, the drained worker retired, no process unlisted (3 times)', async (t) => {
  const cluster = await startCluster(t)
  const restart = async (): Promise<{ status: number, body: any }> => {
    const response = await send(cluster.monitoringPort, { method: 'POST', path: '/cluster/restart?wait=true' })
    return { status: response.status, body: JSON.parse(response.body) }
  }
  for (let round = 1; round <= 3; round++) {
    const { workers } = await cluster.call('stats')
    // Slow requests on fresh connections: round-robin puts some on each worker.
    const slow = Array.from({ length: 4 }, async () => await send(cluster.port, { path: '/slow?ms=3000' }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    process.kill(workers[0].pid, 'SIGTERM')
    for (let i = 0; (await cluster.call('stats')).workers[0].state !== 'draining'; i++) {
      if (i > 100) throw new Error('slot 0 never showed draining')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const reload = await restart()
    t.equal(reload.status, 200, `round ${round}: the reload succeeds (${JSON.stringify(reload.body)})`)
    t.match(reload.body, { ok: true, workers: [{ id: '0' }, { id: '1' }] })
    const answers = await Promise.all(slow)
    t.same(answers.map((answer) => answer.status), [200, 200, 200, 200], `round ${round}: the slow requests finished`)
    const { children, listed } = await processesMatchStats(cluster)
    t.same(children, listed, `round ${round}: every process the primary runs is listed in /cluster/stats`)
    t.match(await cluster.call('health'), { status: 'ok', alive: 2 })
    t.match((await cluster.call('stats')).workers, [{ state: 'ready' }, { state: 'ready' }])
  }
})
