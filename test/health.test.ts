import Fastify from 'fastify'
import t from 'tap'
import clusterPlugin from '../dist/index.js'
import { listenApp } from './helpers/app.js'
import { get } from './helpers/http.js'

t.test('live, ready and the JSON report', async (t) => {
  const { port } = await listenApp(t)
  t.equal((await get(port, '/health/live')).status, 200)
  const ready = await get(port, '/health/ready')
  t.equal(ready.status, 200)
  t.same(JSON.parse(ready.body), { status: 'ok', checks: {} })
  const report = await get(port, '/health')
  t.equal(report.status, 200)
  const body = JSON.parse(report.body)
  t.match(body, {
    status: 'ok',
    workerId: 'single',
    pid: process.pid,
    manager: 'none',
    uptime: Number,
    memory: { rss: Number, heapUsed: Number, heapTotal: Number, external: Number },
    cpu: { percent: Number },
    eventLoop: { p50: Number, p99: Number, max: Number, utilization: Number },
    requests: { total: Number, inFlight: 1, latencyP99: Number },
    checks: {}
  })
  t.ok(body.memory.rss > 0 && body.requests.total >= 3)
})

t.test('a failing check turns readiness to 503 and the report names it', async (t) => {
  const { port } = await listenApp(t, {}, (app) => {
    app.cluster.addCheck('ok-check', () => true)
    app.cluster.addCheck('database', async () => { throw new Error('database unreachable') })
    app.cluster.addCheck('queue', () => false)
  })
  const ready = await get(port, '/health/ready')
  t.equal(ready.status, 503)
  const report = await get(port, '/health')
  t.equal(report.status, 503)
  const { status, checks } = JSON.parse(report.body)
  t.equal(status, 'fail')
  t.match(checks, {
    'ok-check': { status: 'ok' },
    database: { status: 'fail', error: 'database unreachable' },
    queue: { status: 'fail', error: 'Readiness check queue reported not ready' }
  })
  t.equal((await get(port, '/health/live')).status, 200, 'liveness is not affected by checks')
})

t.test('a hanging check fails at its timeout instead of hanging the probe', async (t) => {
  const { port } = await listenApp(t, { checkTimeout: 5000 }, (app) => {
    app.cluster.addCheck('cache', async () => await new Promise(() => {}), { timeout: 200 })
  })
  const started = performance.now()
  const ready = await get(port, '/health/ready')
  const elapsed = performance.now() - started
  t.equal(ready.status, 503)
  const { checks } = JSON.parse(ready.body)
  t.equal(checks.cache.status, 'fail')
  t.equal(checks.cache.error, 'Readiness check cache timed out after 200 ms')
  t.ok(checks.cache.durationMs >= 199, `the check ran until its timeout (${checks.cache.durationMs} ms)`)
  t.ok(elapsed < 4000, `answered long before the plugin-wide 5000 ms timeout (${Math.round(elapsed)} ms)`)
})

t.test('fastify.inject() sees the real readiness and the worker headers, in all three forms of inject', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(clusterPlugin, { handleSignals: false })
  let ready = true
  app.cluster.addCheck('db', () => ready)
  app.get('/', async () => 'hello')
  const response = await app.inject('/health/ready')
  t.equal(response.statusCode, 200, 'ready: every check passes (nothing needs to listen for inject)')
  t.equal(response.json().status, 'ok')
  t.equal(response.headers['x-worker-id'], 'single')
  t.equal(response.headers['x-worker-pid'], String(process.pid))
  ready = false
  const failing = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(failing.statusCode, 503, 'a failing check shows through inject too')
  const chained = await app.inject().get('/').end()
  t.equal(chained.headers['x-worker-id'], 'single', 'the chained form')
  const called = await new Promise<any>((resolve, reject) => { app.inject('/', (error, res) => error ? reject(error) : resolve(res)) })
  t.equal(called.headers['x-worker-pid'], String(process.pid), 'the callback form')
})

t.test('the prefix is configurable, or the routes can be left out', async (t) => {
  const { port } = await listenApp(t, { healthPrefix: '/_status/' })
  t.equal((await get(port, '/_status/live')).status, 200)
  t.equal((await get(port, '/_status')).status, 200)
  t.equal((await get(port, '/health')).status, 404)
  const { port: port2 } = await listenApp(t, { healthPrefix: false })
  t.equal((await get(port2, '/health/live')).status, 404)
})

t.test('addCheck rejects bad input with a clear error', async (t) => {
  const { app } = await listenApp(t, {}, (app) => { app.cluster.addCheck('db', () => true) })
  t.throws(() => app.cluster.addCheck('db', () => true), { code: 'FCK_DUPLICATE_CHECK', message: /db/ })
  t.throws(() => app.cluster.addCheck('x', () => true, { timeout: 0 }), { code: 'FCK_INVALID_OPTION', message: /addCheck x timeout: got 0/ })
  // @ts-expect-error a check must be a function
  t.throws(() => app.cluster.addCheck('y', 'nope'), { code: 'FCK_INVALID_OPTION', message: /addCheck y fn/ })
})
