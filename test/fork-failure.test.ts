import t from 'tap'
import { pidsCgroup } from './helpers/cgroup.js'
import { processesMatchStats, startCluster } from './helpers/cluster.js'
import { get, onWorker } from './helpers/http.js'

t.test('forks refused by a pids limit: the primary and the serving worker stay up, the slot comes back once forks work', async (t) => {
  const cgroup = pidsCgroup(t)
  const cluster = await startCluster(t, { LOG_LEVEL: 'info' },
    { maxRestarts: 2, restartDelay: 1000, restartWindow: 60_000, givenUpRetryDelay: 1000 }, { prefix: cgroup.prefix })
  const { workers } = await cluster.call('stats')
  // Every endpoint of the primary once, so nothing it runs later starts a thread of its own.
  await get(cluster.monitoringPort, '/metrics')
  cgroup.limit(cgroup.current())

  // A reload whose candidate cannot be forked fails; the old workers keep serving.
  cluster.child.kill('SIGHUP')
  const failed = await cluster.waitForEvent((event) => event.event === 'reload:failed')
  t.match(failed.reason, /worker 0: replacement could not be forked: .*EAGAIN/)
  t.match((await cluster.call('stats')).workers.map((worker: any) => worker.pid), workers.map((worker: any) => worker.pid))
  t.equal((await onWorker(cluster.port, '1', { path: '/' })).status, 200, 'worker 1 still serves')

  // A killed worker whose replacement cannot be forked: failed starts, back-off, given up.
  process.kill(workers[1].pid, 'SIGKILL')
  await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === workers[1].pid)
  // The dead worker's pids are free: take them away again before its restart (restartDelay later) forks.
  cgroup.limit(cgroup.current())
  await cluster.waitForEvent((event) => event.event === 'restart-limit' && event.id === '1')
  const exits = cluster.events().filter((event) => event.event === 'worker:exit' && event.id === '1' && event.pid === 0)
  t.ok(exits.length >= 1, 'restarts that could not be forked count as failed starts')
  t.match(exits[0], { state: 'crashed', reason: /could not be forked: .*EAGAIN/ })
  t.match(await cluster.call('health'), { status: 'degraded', alive: 1 })
  for (let i = 0; i < 4; i++) t.equal((await get(cluster.port, '/')).headers['x-worker-id'], '0', 'worker 0 serves alone')
  t.equal(cluster.child.exitCode, null, 'the primary is up')
  t.match(cluster.output(), /"msg":"worker 1 could not be forked: spawn .* EAGAIN"/, 'the log says why')

  // Forks work again: the given-up slot is retried by itself, no reload needed.
  cgroup.limit('max')
  await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === '1', 15_000)
  t.match(await cluster.call('health'), { status: 'ok', alive: 2 })
  const { children, listed } = await processesMatchStats(cluster)
  t.same(children, listed, 'every process the primary runs is listed in /cluster/stats')
})
