import t from 'tap'
import { listenApp } from './helpers/app.js'
import { get } from './helpers/http.js'

t.test('X-Worker-ID and X-Worker-PID on 200, 404 and 500 responses', async (t) => {
  const { port } = await listenApp(t)
  for (const [path, status] of [['/', 200], ['/missing', 404], ['/boom', 500]] as const) {
    const response = await get(port, path)
    t.equal(response.status, status, path)
    t.equal(response.headers['x-worker-id'], 'single', `${path} X-Worker-ID`)
    t.equal(response.headers['x-worker-pid'], String(process.pid), `${path} X-Worker-PID`)
  }
})

t.test('a body that fails to parse still carries the headers', async (t) => {
  const { port } = await listenApp(t, {}, (app) => { app.post('/echo', async (request) => request.body) })
  const response = await fetch(`http://127.0.0.1:${port}/echo`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json'
  })
  t.equal(response.status, 400)
  t.equal(response.headers.get('x-worker-id'), 'single')
})

t.test('a reply sent by an onRequest hook registered before the plugin still carries the headers', async (t) => {
  const { port } = await listenApp(t, {}, undefined, {}, async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/denied') await reply.code(401).send({ error: 'no' })
    })
  })
  const response = await get(port, '/denied')
  t.equal(response.status, 401)
  t.equal(response.headers['x-worker-id'], 'single')
  t.equal(response.headers['x-worker-pid'], String(process.pid))
})

t.test('header names are configurable and each can be turned off', async (t) => {
  const { port } = await listenApp(t, { workerIdHeader: 'X-Instance', workerPidHeader: false })
  for (const path of ['/', '/missing', '/boom']) {
    const response = await get(port, path)
    t.equal(response.headers['x-instance'], 'single', `${path} custom id header`)
    t.notOk('x-worker-id' in response.headers, `${path} default id header absent`)
    t.notOk('x-worker-pid' in response.headers, `${path} pid header turned off`)
  }
  const { port: port2 } = await listenApp(t, { workerIdHeader: false })
  const response = await get(port2, '/')
  t.notOk('x-worker-id' in response.headers, 'id header turned off')
  t.equal(response.headers['x-worker-pid'], String(process.pid), 'pid header kept')
})

t.test('worker id: WORKER_ID from our primary, NODE_APP_INSTANCE under PM2', async (t) => {
  const ours = await listenApp(t, {}, undefined, { CLUSTER_WORKER: 'true', WORKER_ID: '3' })
  t.equal((await get(ours.port, '/')).headers['x-worker-id'], '3')
  t.equal(ours.app.cluster.workerId, '3')
  t.equal(ours.app.cluster.manager, 'bootCluster')

  const pm2 = await listenApp(t, {}, undefined, { NODE_APP_INSTANCE: '1' })
  t.equal((await get(pm2.port, '/')).headers['x-worker-id'], '1')
  t.equal(pm2.app.cluster.manager, 'pm2')

  const alone = await listenApp(t)
  t.equal(alone.app.cluster.manager, 'none')
  t.equal(alone.app.cluster.pid, process.pid)
  t.equal(alone.app.cluster.sharedState, 'memory')
})

t.test('a hijacked reply that writes the raw response carries the headers', async (t) => {
  const { port } = await listenApp(t, {}, (app) => {
    app.get('/raw', (_request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/plain' })
      reply.raw.end('raw')
    })
    app.get('/raw-implicit', (_request, reply) => { reply.hijack(); reply.raw.end('implicit') })
  })
  for (const path of ['/raw', '/raw-implicit']) {
    const response = await get(port, path)
    t.equal(response.status, 200, path)
    t.equal(response.headers['x-worker-id'], 'single', `${path} X-Worker-ID`)
    t.equal(response.headers['x-worker-pid'], String(process.pid), `${path} X-Worker-PID`)
  }
})
