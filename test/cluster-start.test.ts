import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startCluster, waitGone } from './helpers/cluster.js'
import { waitForOutput } from './helpers/fixture.js'
import { get } from './helpers/http.js'

t.test('N workers with distinct ids and pids answer over fresh connections', async (t) => {
  const cluster = await startCluster(t)
  const seen = new Map<string, string>()
  for (let i = 0; i < 20 && seen.size < 2; i++) {
    const response = await get(cluster.port, '/')
    t.equal(response.status, 200)
    seen.set(String(response.headers['x-worker-id']), String(response.headers['x-worker-pid']))
  }
  t.same([...seen.keys()].sort(), ['0', '1'], 'both slot ids answer')
  t.equal(new Set(seen.values()).size, 2, 'from two distinct pids')
  const stats = await cluster.call('stats')
  t.match(stats, { alive: 2, expected: 2, healthy: true, warnings: [], primary: { pid: cluster.child.pid } })
  t.same(stats.workers.map((worker: any) => [worker.id, String(worker.pid), worker.state]).sort(),
    [...seen.entries()].sort().map(([id, pid]) => [id, pid, 'ready']))
})

t.test('kill -9 of one worker under load: same slot id comes back, the other worker is unaffected', async (t) => {
  // A worker that ran past restartWindow counts as stable and is replaced at once.
  const cluster = await startCluster(t, {}, { restartWindow: 200 })
  const stats = await cluster.call('stats')
  const victim = stats.workers.find((worker: any) => worker.id === '1')
  const survivor = stats.workers.find((worker: any) => worker.id === '0')

  // Keep-alive clients, each remembering which worker its connection landed on.
  const errorsByWorker: Record<string, number> = {}
  const okByWorker: Record<string, number> = {}
  const state = { running: true }
  const clients = Array.from({ length: 20 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    let worker = '?'
    while (state.running) {
      try {
        const response = await get(cluster.port, '/', agent)
        worker = String(response.headers['x-worker-id'])
        okByWorker[worker] = (okByWorker[worker] ?? 0) + 1
      } catch {
        errorsByWorker[worker] = (errorsByWorker[worker] ?? 0) + 1
        agent.destroy()
        return
      }
    }
    agent.destroy()
  })
  await sleep(500)
  process.kill(victim.pid, 'SIGKILL')
  const ready = await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === '1')
  await sleep(300)
  state.running = false
  await Promise.all(clients)

  t.not(ready.pid, victim.pid, 'a new process took slot 1')
  t.equal(errorsByWorker['0'] ?? 0, 0, `no request failed on worker 0 (${okByWorker['0']} served)`)
  t.ok((okByWorker['0'] ?? 0) > 100, 'worker 0 kept serving')
  t.match(await cluster.call('stats'), { alive: 2, workers: [{ id: '0', pid: survivor.pid, restarts: 0 }, { id: '1', pid: ready.pid, restarts: 1 }] })
  const answeredBy = new Set<string>()
  for (let i = 0; i < 20 && answeredBy.size < 2; i++) answeredBy.add(String((await get(cluster.port, '/')).headers['x-worker-pid']))
  t.ok(answeredBy.has(String(ready.pid)), 'the replacement serves')
  t.match(cluster.events().find((event) => event.event === 'worker:exit'), { id: '1', pid: victim.pid, signal: 'SIGKILL', state: 'crashed' })
  t.match(cluster.events().find((event) => event.event === 'worker:restart'), { id: '1', restarts: 1, delay: 0 },
    'a stable worker is replaced without delay')
  const pids = [cluster.child.pid!, survivor.pid, ready.pid]
  cluster.child.kill('SIGTERM')
  t.same(await cluster.exited, { code: 0, signal: null })
  t.same(await waitGone(pids), [], 'no process of the cluster remains')
})

t.test('the periodic Cluster Health Report in the log', async (t) => {
  const cluster = await startCluster(t, { LOG_LEVEL: 'info' }, { healthReportInterval: 200 })
  const { workers } = await cluster.call('stats')
  await waitForOutput(cluster.output, 'Cluster Health Report')
  const line = cluster.output().split('\n').find((text) => text.includes('Cluster Health Report'))!
  const { msg, report } = JSON.parse(line)
  t.match(msg, new RegExp(`^Cluster Health Report: primary pid ${cluster.child.pid}, uptime [\\d.]+s, workers 2/2 alive, primary rss \\d+ MB`))
  for (const worker of workers) {
    t.match(msg, new RegExp(`worker ${worker.id}: pid ${worker.pid}, ready, uptime [\\d.]+s, restarts 0, rss (\\d+ MB|\\?)`))
  }
  t.match(report, { alive: 2, expected: 2, primary: { pid: cluster.child.pid } }, 'the stats ride along as structured data')
})

t.test('fewer than half the workers alive: the report warns', async (t) => {
  const cluster = await startCluster(t, { LOG_LEVEL: 'warn' }, { healthReportInterval: 200, maxRestarts: 0 })
  const { workers } = await cluster.call('stats')
  for (const worker of workers) process.kill(worker.pid, 'SIGKILL') // early crashes with maxRestarts 0: both slots give up
  await waitForOutput(cluster.output, 'only 0 of 2 workers alive', 10_000)
  const line = cluster.output().split('\n').find((text) => text.includes('"msg":"only 0 of 2 workers alive"'))
  t.ok(line !== undefined, 'a warning line names how many are alive')
  t.equal(JSON.parse(line ?? '{}').level, 40, 'at warn level')
})

t.test('worker count by NODE_ENV when neither the option nor CLUSTER_WORKERS says', async (t) => {
  const { resolveBootOptions } = await import('../dist/primary/options.js')
  const cores = (await import('node:os')).availableParallelism()
  t.equal(resolveBootOptions({}, { NODE_ENV: 'production' }).workers, cores, 'production: every core')
  t.equal(resolveBootOptions({}, { NODE_ENV: 'development' }).workers, Math.min(2, cores), 'development: at most 2')
  t.equal(resolveBootOptions({}, {}).workers, Math.min(2, cores), 'unset: as development')
  t.equal(resolveBootOptions({}, { NODE_ENV: 'test' }).enabled, false, 'test: one process, no fork')
  t.equal(resolveBootOptions({}, { NODE_ENV: 'production', CLUSTER_WORKERS: '3' }).workers, 3, 'CLUSTER_WORKERS wins over the profile')
  t.equal(resolveBootOptions({ workers: 1 }, { CLUSTER_WORKERS: '3' }).workers, 1, 'the option wins over the environment')
})
