import t from 'tap'
import { History, MAX_POINTS } from '../../lib/primary/monitoring/history.js'
import type { ClusterStats } from '../../lib/primary/types.js'

function stats (workers: Array<{ id: string, pid: number, total: number }>): ClusterStats {
  return {
    primary: { pid: 1, uptime: 1, memory: { rss: 1, heapUsed: 1, heapTotal: 1 }, guard: null },
    workers: workers.map(({ id, pid, total }) => ({
      id,
      pid,
      state: 'ready',
      uptime: 1,
      restarts: 0,
      recycles: 0,
      recyclingStopped: null,
      incidents: null,
      memory: { rss: 50 * 2 ** 20, heapUsed: 1, heapTotal: 1 },
      cpu: 1,
      eventLoop: { p50: 1, p99: 2, max: 3, utilization: 0.1 },
      requests: { total, inFlight: 0, latencyP99: 4, errors: 0 }
    })),
    alive: workers.length,
    expected: workers.length,
    healthy: true,
    warnings: [],
    lastReload: null,
    rollout: null,
    store: { sessions: 0, emptySessions: 0, clients: 0, sessionBytes: 0, counters: 0, evictions: { clientLimit: 0, storeFull: 0 } }
  }
}

t.test('requests/s per worker from successive points; a new pid in a slot starts over', async (t) => {
  const history = new History(1000)
  t.equal(history.add(stats([{ id: '0', pid: 10, total: 100 }]), 0).workers[0]?.rps, null, 'no rate from one point')
  t.match(history.add(stats([{ id: '0', pid: 10, total: 350 }]), 500).workers[0], { rps: 500, latencyP99: 4, loopP99: 2, rss: 50 * 2 ** 20 })
  t.equal(history.add(stats([{ id: '0', pid: 11, total: 5 }]), 1500).workers[0]?.rps, null, 'a replaced worker has no rate yet')
  t.equal(history.add(stats([{ id: '0', pid: 11, total: 25 }]), 2500).workers[0]?.rps, 20)
})

t.test('a ring: 15 minutes of points at most, never more than MAX_POINTS, oldest first', async (t) => {
  t.equal(new History(2000).capacity, 450)
  t.equal(new History(10).capacity, MAX_POINTS)
  const history = new History(60_000)
  t.equal(history.capacity, 15)
  for (let i = 0; i < 40; i++) history.add(stats([{ id: '0', pid: 1, total: i }]), i * 60_000)
  const points = history.points()
  t.equal(points.length, 15)
  t.same(points.map((point) => point.t / 60_000), Array.from({ length: 15 }, (_, i) => 25 + i))
})

t.test('once full, the oldest point is rewritten in place, whatever the number of workers', async (t) => {
  const history = new History(60_000)
  const two = (i: number): ClusterStats => stats([{ id: '0', pid: 1, total: i }, { id: '1', pid: 2, total: i }])
  for (let i = 0; i < 15; i++) history.add(two(i), i * 60_000)
  const oldest = history.points()[0]
  const shrunk = history.add(stats([{ id: '0', pid: 1, total: 15 }]), 15 * 60_000)
  t.equal(shrunk, oldest, 'the oldest point object holds the newest sample')
  t.same(shrunk.workers.map((worker) => worker.id), ['0'])
  const grown = history.add(stats([{ id: '0', pid: 1, total: 16 }, { id: '1', pid: 2, total: 16 }, { id: '2', pid: 3, total: 16 }]), 16 * 60_000)
  t.same(grown.workers.map((worker) => [worker.id, worker.pid, worker.rps]), [['0', 1, 0], ['1', 2, 0], ['2', 3, null]], 'a slot missing from one point keeps its rate; a new slot has none')
  const points = history.points()
  t.same(points.map((point) => point.t / 60_000), Array.from({ length: 15 }, (_, i) => 2 + i))
  t.same(points[0]?.workers.map((worker) => worker.id), ['0', '1'], 'older points keep their own workers')
})
