import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t from 'tap'
import { processesMatchStats, startCluster } from './helpers/cluster.js'
import { get, onWorker, send, sessionCookie } from './helpers/http.js'
import { startRedis } from './helpers/redis.js'

const SECRET = 'a-session-secret-of-at-least-32-characters'

/** Polls `path` on worker `id` until it answers `status`; throws after `ms`. */
async function until (port: number, id: string, path: string, status: number, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while ((await onWorker(port, id, { path })).status !== status) {
    if (Date.now() > deadline) throw new Error(`worker ${id} never answered ${status} on ${path}`)
    await sleep(100)
  }
}

t.test('Redis SIGKILLed: probes and /metrics stay up, a crashed worker is replaced and listens, ready again when Redis is back', async (t) => {
  const redis = await startRedis(t)
  // The session defaults @fastify/session users keep (saveUninitialized: true): every app route
  // then needs the store, and the probes still must not.
  const cluster = await startCluster(t, {
    REDIS_URL: redis.url,
    FIXTURE_PLUGIN_OPTIONS: JSON.stringify({ rateLimit: { max: 10_000 }, session: { secret: SECRET, cookie: { secure: false }, saveUninitialized: true } })
  })
  t.equal((await get(cluster.port, '/')).status, 200)

  await redis.kill()
  for (const id of ['0', '1']) {
    const live = await onWorker(cluster.port, id, { path: '/health/live' })
    t.equal(live.status, 200, `worker ${id}: /health/live answers 200 while Redis is away`)
    t.equal(live.headers['set-cookie'], undefined, 'and sets no cookie')
    const ready = await onWorker(cluster.port, id, { path: '/health/ready' })
    t.equal(ready.status, 503, `worker ${id}: /health/ready says not ready`)
    t.match(JSON.parse(ready.body), { status: 'fail', checks: { redis: { status: 'fail' } } })
  }
  t.equal((await get(cluster.port, '/')).status, 503, 'an app route that needs the session store answers 503 (the app chose saveUninitialized)')
  t.equal((await get(cluster.monitoringPort, '/metrics')).status, 200, 'the cluster\'s /metrics answers')

  // A worker that crashes during the outage is replaced, and its replacement listens.
  const { workers } = await cluster.call('stats')
  process.kill(workers[1].pid, 'SIGKILL')
  const replaced = await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === '1' && event.pid !== workers[1].pid)
  t.match(cluster.output(), /starting without it, not ready until it answers/, 'the new worker says it starts without Redis')
  t.equal((await onWorker(cluster.port, '1', { path: '/health/live' })).headers['x-worker-pid'], String(replaced.pid), 'the replacement serves probes')
  t.equal((await onWorker(cluster.port, '1', { path: '/health/ready' })).status, 503, 'and is not ready')
  t.match(await cluster.call('stats'), { alive: 2, workers: [{ state: 'ready' }, { state: 'ready', restarts: 1 }] })
  const { children, listed } = await processesMatchStats(cluster)
  t.same(children, listed, 'every process the primary runs is listed in /cluster/stats')

  await redis.restart()
  await until(cluster.port, '0', '/health/ready', 200)
  await until(cluster.port, '1', '/health/ready', 200)
  t.pass('both workers turn ready once Redis answers, with no restart')
  t.equal((await get(cluster.port, '/')).status, 200)
})

t.test('sessions in the primary: anonymous traffic stores nothing, sets no cookie and cannot evict signed-in users', async (t) => {
  const cluster = await startCluster(t, { FIXTURE_PLUGIN_OPTIONS: JSON.stringify({ session: { secret: SECRET, cookie: { secure: false } } }) },
    { primaryStore: { maxSessions: 50 } })
  const people = await Promise.all(['ada', 'grace', 'edsger'].map(async (name) => sessionCookie(await send(cluster.port, { method: 'POST', path: `/session?value=${name}` }))))
  const anonymous = await Promise.all(Array.from({ length: 300 }, async (_, i) => await send(cluster.port, { path: ['/', '/session', '/health', '/health/ready'][i % 4] as string })))
  t.same([...new Set(anonymous.map((response) => response.status))], [200])
  t.equal(anonymous.filter((response) => response.headers['set-cookie'] !== undefined).length, 0, 'no Set-Cookie on untouched routes or probes')
  const metrics = (await get(cluster.monitoringPort, '/metrics')).body
  t.match(metrics, /cluster_primary_store_entries\{kind="session"\} 3\n/, 'three sessions hold data')
  t.match(metrics, /cluster_primary_store_entries\{kind="empty_session"\} 0\n/, 'anonymous requests stored none')
  t.match(metrics, /cluster_primary_store_limit\{limit="sessions"\} 50\n/)
  for (const [i, name] of ['ada', 'grace', 'edsger'].entries()) {
    t.equal(JSON.parse((await send(cluster.port, { path: '/session', headers: { cookie: people[i] } })).body).value, name)
  }
})

t.test('with saveUninitialized: true, empty sessions fill the primary store but are evicted before those holding data', async (t) => {
  const cluster = await startCluster(t, { FIXTURE_PLUGIN_OPTIONS: JSON.stringify({ session: { secret: SECRET, cookie: { secure: false }, saveUninitialized: true } }) },
    { primaryStore: { maxSessions: 50 } })
  const people = await Promise.all(['ada', 'grace', 'edsger'].map(async (name) => sessionCookie(await send(cluster.port, { method: 'POST', path: `/session?value=${name}` }))))
  const anonymous = await Promise.all(Array.from({ length: 300 }, async () => await send(cluster.port, { path: '/' })))
  t.same([...new Set(anonymous.map((response) => response.status))], [200])
  const probes = await Promise.all(['/health', '/health/live', '/health/ready'].map(async (path) => await send(cluster.port, { path })))
  t.same(probes.map((response) => response.headers['set-cookie']), [undefined, undefined, undefined], 'probes never set a cookie')
  const metrics = (await get(cluster.monitoringPort, '/metrics')).body
  t.match(metrics, /cluster_primary_store_entries\{kind="session"\} 3\n/)
  t.match(metrics, /cluster_primary_store_entries\{kind="empty_session"\} 47\n/, 'empty sessions up to the limit')
  t.match(metrics, /cluster_primary_store_evictions_total\{kind="empty_session",reason="store_full"\} 253\n/)
  t.match(metrics, /cluster_primary_store_evictions_total\{kind="session",reason="store_full"\} 0\n/, 'no session holding data was evicted')
  for (const [i, name] of ['ada', 'grace', 'edsger'].entries()) {
    t.equal(JSON.parse((await send(cluster.port, { path: '/session', headers: { cookie: people[i] } })).body).value, name, `${name} is still signed in`)
  }
})

t.test('a rolling reload under anonymous load with sessions in the primary: no 503 on a route that does not touch the session', async (t) => {
  const cluster = await startCluster(t, { FIXTURE_PLUGIN_OPTIONS: JSON.stringify({ session: { secret: SECRET, cookie: { secure: false } } }) })
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 50, duration: 6 })
  await sleep(1000)
  t.match(await cluster.call('reload'), { ok: true })
  const result = await load
  t.same([result.errors, result.timeouts, result.non2xx], [0, 0, 0], `no error, timeout or non-2xx in ${result.requests.total} requests`)
})
