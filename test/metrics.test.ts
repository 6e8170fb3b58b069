import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Counter, Registry } from 'prom-client'
import t from 'tap'
import clusterPlugin from '../dist/index.js'
import { listenApp } from './helpers/app.js'
import { get } from './helpers/http.js'

function count (text: string, labels: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`http_request_duration_seconds_count${labels} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

t.test('one process: /metrics on the app itself, request durations by route pattern, probes left out', async (t) => {
  const { app, port } = await listenApp(t, { metrics: { endpoint: '/metrics' } }, (app) => {
    app.get('/users/:id', async () => ({ ok: true }))
  })
  await get(port, '/users/1')
  await get(port, '/users/2')
  await get(port, '/missing/a')
  await get(port, '/missing/b')
  await get(port, '/boom')
  await get(port, '/health/live')
  const metrics = await get(port, '/metrics')
  t.equal(metrics.status, 200)
  t.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(count(metrics.body, '{method="GET",route="/users/:id",status_code="200"}'), 2)
  t.equal(count(metrics.body, '{method="GET",route="not_found",status_code="404"}'), 2)
  t.equal(count(metrics.body, '{method="GET",route="/boom",status_code="500"}'), 1)
  t.notMatch(metrics.body, /route="\/health|route="\/metrics/, 'probes and scrapes are not app traffic')
  t.match(metrics.body, /^process_resident_memory_bytes \d+/m, 'default metrics')
  t.type(app.cluster.metrics?.getMetricsAsJSON, 'function', 'the registry is on the decorator')
})

t.test('metrics.registry: the app\'s own metrics come along; metrics: false collects none', async (t) => {
  const registry = new Registry()
  const logins = new Counter({ name: 'app_logins_total', help: 'Logins', registers: [registry] })
  const { app, port } = await listenApp(t, { metrics: { registry, defaultMetrics: false, endpoint: '/metrics' } })
  logins.inc(3)
  t.equal(app.cluster.metrics, registry)
  const text = (await get(port, '/metrics')).body
  t.match(text, /^app_logins_total 3$/m)
  t.notMatch(text, /process_resident_memory_bytes/, 'defaultMetrics: false')

  const off = await listenApp(t, { metrics: false })
  t.equal(off.app.cluster.metrics, undefined)
  t.equal((await get(off.port, '/metrics')).status, 404)
})

t.test('replies sent before the handler ran count under their route, hijacked replies too, inject() not at all', async (t) => {
  const { app, port } = await listenApp(t, { metrics: { endpoint: '/metrics', defaultMetrics: false } }, (app) => {
    app.post('/orders/:id', async (request) => request.body)
    app.get('/admin/:page', async () => 'never reached')
    app.get('/raw', (_request, reply) => { reply.hijack(); reply.raw.end('raw') })
    app.get('/quiet', { config: { metrics: false } }, async () => 'quiet')
  }, {}, async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/admin')) await reply.code(401).send({ error: 'no' })
    })
  })
  const badBody = await fetch(`http://127.0.0.1:${port}/orders/7`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' })
  t.equal(badBody.status, 400)
  t.equal((await get(port, '/admin/users')).status, 401)
  t.equal((await get(port, '/raw')).body, 'raw')
  t.equal((await get(port, '/quiet')).status, 200)
  t.equal((await app.inject('/')).statusCode, 200)
  const text = (await get(port, '/metrics')).body
  t.equal(count(text, '{method="POST",route="/orders/:id",status_code="400"}'), 1, 'a body that does not parse')
  t.equal(count(text, '{method="GET",route="/admin/:page",status_code="401"}'), 1, 'a reply from an onRequest hook')
  t.equal(count(text, '{method="GET",route="/raw",status_code="200"}'), 1, 'a hijacked reply')
  t.notMatch(text, /route="\/quiet"/, 'config: { metrics: false }')
  t.notMatch(text, /route="\/"/, 'injected requests do not reach the server')
})

t.test('routes registered before the plugin (as bootCluster registers it) are observed under their pattern', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/early/:id', async () => 'early')
  app.post('/early-body', async (request) => request.body)
  await app.register(clusterPlugin, { handleSignals: false, metrics: { endpoint: '/metrics', defaultMetrics: false } })
  app.get('/late', async () => 'late')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  t.equal((await get(port, '/early/1')).status, 200)
  t.equal((await get(port, '/late')).status, 200)
  t.equal((await get(port, '/nowhere')).status, 404)
  const badBody = await fetch(`http://127.0.0.1:${port}/early-body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
  t.equal(badBody.status, 400)
  const text = (await get(port, '/metrics')).body
  t.equal(count(text, '{method="GET",route="/early/:id",status_code="200"}'), 1)
  t.equal(count(text, '{method="POST",route="/early-body",status_code="400"}'), 1)
  t.equal(count(text, '{method="GET",route="/late",status_code="200"}'), 1)
  t.equal(count(text, '{method="GET",route="not_found",status_code="404"}'), 1)
})
