import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { WorkerSample } from '../dist/index.js'
import { startFixture } from './helpers/fixture.js'
import { get } from './helpers/http.js'

const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  FIXTURE_PLUGIN_OPTIONS: JSON.stringify({ heartbeatInterval: 100 }),
  FIXTURE_LOG_LEVEL: 'warn',
  CLUSTER_WORKER: '',
  WORKER_ID: '',
  NODE_APP_INSTANCE: '',
  pm_id: '',
  ...extra
})

t.test('under our primary: a ready message, then heartbeats with stats', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: env({ CLUSTER_WORKER: 'true', WORKER_ID: '1', FIXTURE_BOOT: '1' }) })
  const { messages } = fixture
  for (let i = 0; i < 5; i++) t.equal((await get(fixture.port, '/')).headers['x-worker-id'], '1')
  await sleep(350)

  t.match(messages[0], { type: 'fck:ready', workerId: '1', pid: fixture.child.pid, address: `127.0.0.1:${fixture.port}` },
    'ready, with the address, first')
  const beats = messages.filter((message) => message.type === 'fck:heartbeat')
  t.ok(beats.length >= 2, `${beats.length} heartbeats in 350 ms at 100 ms`)
  const last = beats.at(-1)
  t.match(last, { type: 'fck:heartbeat', workerId: '1', pid: fixture.child.pid })
  const sample: WorkerSample = last.sample
  t.match(sample, {
    rss: Number,
    heapUsed: Number,
    heapTotal: Number,
    cpu: { user: Number, system: Number, percent: Number },
    eventLoop: { p50: Number, p99: Number, max: Number, utilization: Number },
    requests: { total: 5, inFlight: 0, latencyP99: Number }
  })
  t.ok(beats.some((beat) => beat.sample.requests.latencyP99 > 0), 'the window with the 5 requests has their p99 latency')
  t.equal(last.sample.requests.latencyP99, 0, 'a window without requests has none')
  t.ok(sample.rss > 10_000_000, 'rss in bytes')
  t.ok(sample.eventLoop.utilization >= 0 && sample.eventLoop.utilization <= 1)

  fixture.child.kill('SIGTERM')
  await fixture.exited
  t.match(messages.find((message) => message.type === 'fck:draining'), { workerId: '1', reason: 'SIGTERM' })
})

t.test('no primary of ours: nothing is sent over an IPC channel', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: env({}) })
  await get(fixture.port, '/')
  await sleep(350)
  t.same(fixture.messages, [])
})

t.test('under PM2: the plain ready message wait_ready expects, and no heartbeats', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: env({ NODE_APP_INSTANCE: '2' }) })
  t.equal((await get(fixture.port, '/')).headers['x-worker-id'], '2')
  await sleep(350)
  t.same(fixture.messages, ['ready'], 'ready once, no heartbeat to PM2')
})

t.test('no timer or listener of the plugin keeps a process alive', async (t) => {
  for (const listen of ['', '1']) {
    const fixture = await startFixture(t, 'idle.mjs', { ipc: false, env: { FIXTURE_LISTEN: listen } })
    t.same(await fixture.exited, { code: 0, signal: null }, listen === '' ? 'after ready()' : 'after listen() and close()')
  }
})
