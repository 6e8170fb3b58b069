import fastifyRedis from '@fastify/redis'
import { Redis } from 'ioredis'
import t from 'tap'
import type { WindowMode } from '../dist/common/protocol.js'
import { SharedState } from '../dist/shared-state/primary-store.js'
import { redisCounter, tallied, type Tally } from '../dist/shared-state/rate-limit-store.js'
import { listenApp } from './helpers/app.js'
import { startCluster } from './helpers/cluster.js'
import { onWorker, send, sessionCookie, type Response } from './helpers/http.js'
import { startRedis } from './helpers/redis.js'

const SECRET = 'a-session-secret-of-at-least-32-characters'

function pluginEnv (options: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { FIXTURE_PLUGIN_OPTIONS: JSON.stringify(options), ...env }
}

/** `count` requests, 10 at a time, each over a fresh connection (so round-robin spreads them). */
async function burst (port: number, count: number, path = '/'): Promise<Response[]> {
  const responses: Response[] = []
  for (let i = 0; i < count; i += 10) {
    responses.push(...await Promise.all(Array.from({ length: Math.min(10, count - i) }, async () => await send(port, { path }))))
  }
  return responses
}

t.test('the Redis script counts a batch as the primary store does: same counts, same windows', async (t) => {
  const redis = new Redis((await startRedis(t)).url)
  t.teardown(() => redis.disconnect())
  const inRedis = redisCounter(redis).incr
  const store = new SharedState({ maxSessions: 10, maxSessionsPerClient: 10, maxSessionBytes: 1000, maxCounters: 100 })
  t.teardown(() => store.stop())
  const inPrimary = tallied(async (batch) => batch.map((hits) => store.handle({ op: 'incr', ...hits }, 0) as Tally))
  // Windows of minutes, so the milliseconds between two batches in Redis show only in the ttls' tails.
  const keys: Array<[string, number, WindowMode]> = [['fixed', 3, 'fixed'], ['continue', 2, 'continue'], ['backoff', 2, 'backoff']]
  const hits = Array.from({ length: 30 }, (_, i) => keys[(i * 7) % 3] as [string, number, WindowMode])
  const batch = async (incr: typeof inRedis, part: typeof hits): Promise<Array<{ current: number, ttl: number }>> =>
    await Promise.all(part.map(async ([key, max, mode]) => await incr(key, 60_000, max, mode)))
  const started = Date.now()
  const redisCounts = [...await batch(inRedis, hits.slice(0, 10)), ...await batch(inRedis, hits.slice(10))]
  const elapsed = Date.now() - started
  const primaryCounts = [...await batch(inPrimary, hits.slice(0, 10)), ...await batch(inPrimary, hits.slice(10))]
  t.same(redisCounts.map((count) => count.current), primaryCounts.map((count) => count.current), 'the same counts')
  for (const [i, count] of redisCounts.entries()) {
    const expected = (primaryCounts[i] as { ttl: number }).ttl
    t.ok(count.ttl <= expected && count.ttl >= expected - elapsed - 5, `hit ${i} (${hits[i]?.[0]}): ttl ${count.ttl} ≈ ${expected}`)
  }
  t.ok(primaryCounts.some((count) => count.ttl > 60_000), 'backoff grew a window')
})

for (const backend of ['redis', 'primary'] as const) {
  t.test(`${backend} backend: 2 workers, limit 50, 200 requests: exactly 50 pass, 150 get 429`, async (t) => {
    const env = backend === 'redis' ? { REDIS_URL: (await startRedis(t)).url } : {}
    const cluster = await startCluster(t, pluginEnv({ rateLimit: { max: 50, timeWindow: '1 minute' } }, env))
    const responses = await burst(cluster.port, 200)
    const statuses = responses.map((response) => response.status)
    t.equal(statuses.filter((status) => status === 200).length, 50, '50 allowed')
    t.equal(statuses.filter((status) => status === 429).length, 150, '150 limited')
    t.same(new Set(responses.map((response) => response.headers['x-worker-id'])), new Set(['0', '1']), 'both workers answered')
    const limited = responses.find((response) => response.status === 429)
    t.equal(limited?.headers['x-ratelimit-limit'], '50')
    t.equal(limited?.headers['x-ratelimit-remaining'], '0')
    t.ok(Number(limited?.headers['retry-after']) > 0, 'retry-after')
    const health = JSON.parse((await send(cluster.port, { path: '/health' })).body)
    t.equal(health.sharedState, backend, '/health names the backend')
  })

  t.test(`${backend} backend: 200 clients at once on one key across 2 workers: exactly the limit passes, each count answered once`, async (t) => {
    const env = backend === 'redis' ? { REDIS_URL: (await startRedis(t)).url } : {}
    const cluster = await startCluster(t, pluginEnv({ rateLimit: { max: 50, timeWindow: '1 minute' } }, env))
    // Every client at once, each on its own connection: the workers' store calls are in flight
    // together and go out in batches, whose answers must reach the right request.
    const responses = await Promise.all(Array.from({ length: 200 }, async () => await send(cluster.port, { path: '/' })))
    const passed = responses.filter((response) => response.status === 200)
    t.equal(passed.length, 50, '50 allowed')
    t.equal(responses.filter((response) => response.status === 429).length, 150, '150 limited')
    t.same(passed.map((response) => Number(response.headers['x-ratelimit-remaining'])).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i), 'remaining 49 down to 0, each once: every request got its own count')
    t.same(new Set(responses.map((response) => response.headers['x-worker-id'])), new Set(['0', '1']), 'both workers answered')
  })

  t.test(`${backend} backend: a session set on worker 0 is read on worker 1; destroy and expiry work`, async (t) => {
    const env = backend === 'redis' ? { REDIS_URL: (await startRedis(t)).url } : {}
    const cluster = await startCluster(t, pluginEnv({ session: { secret: SECRET, cookie: { secure: false, maxAge: 2000 }, saveUninitialized: false } }, env))
    const set = await onWorker(cluster.port, '0', { method: 'POST', path: '/session?value=hello' })
    const cookie = sessionCookie(set)
    t.match(cookie, /^sessionId=/)
    const read = await onWorker(cluster.port, '1', { path: '/session', headers: { cookie } })
    t.same(JSON.parse(read.body), { id: '1', value: 'hello' }, 'worker 1 reads what worker 0 stored')
    await onWorker(cluster.port, '1', { method: 'DELETE', path: '/session', headers: { cookie } })
    t.same(JSON.parse((await onWorker(cluster.port, '0', { path: '/session', headers: { cookie } })).body).value, null, 'destroyed everywhere')

    const again = await onWorker(cluster.port, '1', { method: 'POST', path: '/session?value=brief' })
    const brief = sessionCookie(again)
    t.equal(JSON.parse((await onWorker(cluster.port, '0', { path: '/session', headers: { cookie: brief } })).body).value, 'brief')
    await new Promise((resolve) => setTimeout(resolve, 2500))
    t.equal(JSON.parse((await send(cluster.port, { path: '/session', headers: { cookie: brief } })).body).value, null, 'expired with its maxAge')
  })
}

for (const backend of ['redis', 'primary'] as const) {
  t.test(`${backend} backend: exponentialBackoff doubles the window per request over the limit; increment: false only reads`, async (t) => {
    const env = backend === 'redis' ? { REDIS_URL: (await startRedis(t)).url } : {}
    const cluster = await startCluster(t, pluginEnv({ rateLimit: { max: 2, timeWindow: 1000, exponentialBackoff: true } }, env))
    const responses = []
    for (let i = 0; i < 5; i++) responses.push(await send(cluster.port, { path: '/' }))
    t.same(responses.map((response) => response.status), [200, 200, 429, 429, 429])
    t.same(responses.slice(2).map((response) => response.headers['retry-after']), ['1', '2', '4'], 'the window doubles: 1 s, 2 s, 4 s')
    t.same(new Set(responses.map((response) => response.headers['x-worker-id'])), new Set(['0', '1']), 'across both workers')

    const limit = async (op: 'take' | 'peek'): Promise<number> => JSON.parse((await send(cluster.port, { path: `/limit/${op}` })).body).remaining
    t.same([await limit('take'), await limit('take'), await limit('peek'), await limit('peek'), await limit('take'), await limit('peek')],
      [2, 1, 1, 1, 0, 0], 'peeking (increment: false) does not count')
  })
}

t.test('two bootCluster processes sharing one Redis: the limit holds across both', async (t) => {
  const redis = await startRedis(t)
  const options = pluginEnv({ rateLimit: { max: 50, timeWindow: '1 minute' } }, { REDIS_URL: redis.url })
  const [a, b] = await Promise.all([startCluster(t, options), startCluster(t, options)])
  const responses = (await Promise.all([burst(a.port, 100), burst(b.port, 100)])).flat()
  t.equal(responses.filter((response) => response.status === 200).length, 50, '50 allowed over 4 workers in 2 clusters')
  t.equal(responses.filter((response) => response.status === 429).length, 150)
})

for (const onStoreError of ['fail-open', 'fail-closed'] as const) {
  t.test(`Redis killed mid-load (${onStoreError}): no request waits for Redis to come back; back without restart`, async (t) => {
    const redis = await startRedis(t)
    const cluster = await startCluster(t, pluginEnv({
      storeTimeout: 500,
      onStoreError,
      rateLimit: { max: 10_000, timeWindow: '1 minute' },
      session: { secret: SECRET, cookie: { secure: false }, saveUninitialized: false }
    }, { REDIS_URL: redis.url }))
    const set = await send(cluster.port, { method: 'POST', path: '/session?value=kept' })
    const cookie = sessionCookie(set)

    await redis.kill()
    const during: Array<{ status: number, ms: number, path: string }> = []
    const until = Date.now() + 2000
    while (Date.now() < until) {
      await Promise.all(['/', '/session'].map(async (path) => {
        const started = Date.now()
        // The cookie only where the session is wanted: @fastify/session loads it on any route.
        const response = await send(cluster.port, { path, headers: path === '/session' ? { cookie } : {} })
        during.push({ status: response.status, ms: Date.now() - started, path })
      }))
    }
    // Redis stays away for the whole 2 s loop: a request that waited for it would take longer than
    // that; with storeTimeout 500 none may, with room for a busy machine.
    const slowest = Math.max(...during.map((request) => request.ms))
    t.ok(slowest <= 1500, `slowest request during the outage: ${slowest} ms`)
    const limited = during.filter((request) => request.path === '/').map((request) => request.status)
    t.same([...new Set(limited)], [onStoreError === 'fail-open' ? 200 : 503], `rate-limited route: ${onStoreError}`)
    t.same([...new Set(during.filter((request) => request.path === '/session').map((request) => request.status))], [503], 'sessions answer 503')
    t.equal((await send(cluster.port, { path: '/health/ready' })).status, 503, 'readiness fails while Redis is away')
    t.equal(cluster.child.exitCode, null, 'the cluster is still up')

    await redis.restart()
    let ready = 0
    for (let i = 0; i < 100 && ready < 2; i++) {
      ready = (await send(cluster.port, { path: '/health/ready' })).status === 200 ? ready + 1 : 0
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const limitedAgain = await send(cluster.port, { path: '/' })
    t.equal(limitedAgain.status, 200)
    t.equal(limitedAgain.headers['x-ratelimit-remaining'], '9999', 'counting again in the new Redis')
    const again = await send(cluster.port, { method: 'POST', path: '/session?value=back' })
    const fresh = sessionCookie(again)
    t.equal(JSON.parse((await send(cluster.port, { path: '/session', headers: { cookie: fresh } })).body).value, 'back', 'sessions work again')
  })
}

t.test('one process: the memory backend; an app\'s own @fastify/redis client is reused', async (t) => {
  const { app, port } = await listenApp(t, { rateLimit: { max: 3, timeWindow: '1 minute' } })
  t.equal(app.cluster.sharedState, 'memory')
  const statuses = (await burst(port, 5)).map((response) => response.status).sort()
  t.same(statuses, [200, 200, 200, 429, 429])
  t.equal(JSON.parse((await send(port, { path: '/health' })).body).sharedState, 'memory')

  const redis = await startRedis(t)
  const own = await listenApp(t, { redis: redis.url, rateLimit: { max: 3, timeWindow: '1 minute' } }, undefined, {}, async (app) => {
    await app.register(fastifyRedis, { url: redis.url })
  })
  t.equal(own.app.cluster.sharedState, 'redis')
  await send(own.port, { path: '/' })
  t.same(await (own.app as any).redis.keys('fck:rl:*'), ['fck:rl:127.0.0.1'], 'the count lives in the app\'s own Redis client')
  t.equal(JSON.parse((await send(own.port, { path: '/health/ready' })).body).checks.redis.status, 'ok', 'readiness pings Redis')
  await t.rejects(listenApp(t, { redis: redis.url, session: { secret: 'short' } }),
    { code: 'FCK_INVALID_OPTION', message: /Invalid option session: .*"store":"<store>".*the secret must have length 32 or greater/ },
    'with the Redis store in the options, the error still names the secret problem')
})
