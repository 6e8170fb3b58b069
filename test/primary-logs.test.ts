import t from 'tap'
import { startCluster, waitGone } from './helpers/cluster.js'
import { get } from './helpers/http.js'

t.test('a terminal\'s Ctrl-C (SIGINT to the whole process group): a clean stop, no "unhealthy", primary lines carry the primary\'s pid', async (t) => {
  const cluster = await startCluster(t, { LOG_LEVEL: 'info' }, {}, { detached: true })
  const { workers } = await cluster.call('stats')
  t.equal((await get(cluster.port, '/')).status, 200)

  // More concurrent scrapes than EventEmitter's default listener limit (10).
  const scrapes = await Promise.all(Array.from({ length: 25 }, async () => await get(cluster.monitoringPort, '/metrics')))
  t.same([...new Set(scrapes.map((scrape) => scrape.status))], [200])
  t.notMatch(cluster.output(), /MaxListenersExceededWarning/, 'no listener leak warning')

  process.kill(-(cluster.child.pid as number), 'SIGINT')
  t.same(await cluster.exited, { code: 0, signal: null }, 'exit 0')
  t.same(await waitGone(workers.map((worker: any) => worker.pid)), [], 'the workers are gone')
  const primary = cluster.output().split('\n').filter((line) => line.includes('"role":"primary"')).map((line) => JSON.parse(line))
  t.ok(primary.length > 5, `${primary.length} primary log lines`)
  t.same(primary.filter((line) => line.pid !== cluster.child.pid), [], 'every primary line has the primary\'s pid; workers are named by workerPid')
  t.ok(primary.some((line) => line.workerPid === workers[0].pid), 'worker pids appear as workerPid')
  t.notMatch(cluster.output(), /cluster unhealthy|only 0 of 2 workers alive/, 'a stop is not reported as a failure')
  t.match(cluster.output(), /"msg":"cluster stopped"/)
})

t.test('every line a worker logs through Fastify\'s logger carries its workerId', async (t) => {
  const cluster = await startCluster(t, { FIXTURE_LOG_LEVEL: 'info' })
  const served = new Set<string>()
  for (let i = 0; i < 6; i++) served.add(String((await get(cluster.port, '/')).headers['x-worker-id']))
  const deadline = Date.now() + 10_000
  const requestLines = (): any[] => cluster.output().split('\n').filter((line) => line.includes('"reqId"')).map((line) => JSON.parse(line))
  while (requestLines().length < 12 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  const lines = requestLines()
  t.equal(lines.length, 12, 'an incoming and a completed line per request')
  t.same(lines.filter((line) => typeof line.workerId !== 'string'), [], 'none without a workerId')
  t.same([...new Set(lines.map((line) => line.workerId))].sort(), [...served].sort(), 'the ids of the workers that served')
  t.ok(lines.every((line) => line.role === undefined), 'worker lines are not the primary\'s')
})
