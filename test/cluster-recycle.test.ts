import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t from 'tap'
import { startCluster } from './helpers/cluster.js'
import { get } from './helpers/http.js'

t.test('a worker whose RSS passes maxMemory is replaced, new worker first, with no failed request', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1' }, { maxMemory: '160M' })
  const [worker] = (await cluster.call('stats')).workers
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 20, duration: 4 })
  await sleep(500)
  const grown = JSON.parse((await get(cluster.port, '/grow?mb=150')).body)
  t.ok(grown.rss > 160 * 2 ** 20, `the worker grew to ${Math.round(grown.rss / 2 ** 20)} MiB`)
  const ready = await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.pid !== worker.pid, 10_000)
  const result = await load
  t.equal(ready.id, '0', 'the replacement took the same slot')
  // Its drain can outlast the load on a busy machine: wait for its exit rather than read events so far.
  t.match(await cluster.waitForEvent((event) => event.event === 'worker:exit'), { pid: worker.pid, code: 0, state: 'retired' },
    'the old worker drained and exited 0')
  t.equal(result.errors + result.timeouts, 0, 'no request failed')
  t.equal(result.non2xx, 0, 'no non-2xx answer')
  t.match(await cluster.call('stats'), { alive: 1, workers: [{ id: '0', pid: ready.pid }] })
})

t.test('a worker whose event loop is blocked is killed and replaced within heartbeatTimeout + 2 s (1 s of it to take its stack)', async (t) => {
  const heartbeatTimeout = 1000
  const cluster = await startCluster(t, {}, { heartbeatTimeout, restartWindow: 0 })
  // Learn which worker a keep-alive socket reached, then block that worker through it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const first = await get(cluster.port, '/', agent)
  const victim = { id: String(first.headers['x-worker-id']), pid: Number(first.headers['x-worker-pid']) }
  const blocked = get(cluster.port, '/block?ms=60000', agent).catch((error: Error) => error)
  const blockedAt = Date.now()
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim.pid, 10_000)
  const killedAfter = Date.now() - blockedAt
  t.match(exit, { signal: 'SIGKILL', state: 'crashed', reason: /no heartbeat for \d+ ms \(heartbeatTimeout 1000 ms\)/ })
  t.ok(killedAfter <= heartbeatTimeout + 2000, `killed ${killedAfter} ms after the loop was seen blocked`)
  const ready = await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === victim.id)
  t.not(ready.pid, victim.pid)
  t.type(await blocked, Error, 'the request on the blocked worker was lost with it')
})
