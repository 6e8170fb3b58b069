import { Counter, Registry } from 'prom-client'
import t from 'tap'
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
