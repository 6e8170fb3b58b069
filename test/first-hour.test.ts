// The traps a new user fell into following the README (issue 32), each reproduced for real.
import Fastify from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import clusterPlugin from '../dist/index.js'
import { freePort, pidsWithMarker, startCluster, waitGone } from './helpers/cluster.js'
import { runFixture, startFixture } from './helpers/fixture.js'
import { get } from './helpers/http.js'

const boot = (options: Record<string, unknown>): string => JSON.stringify({ host: '127.0.0.1', healthReportInterval: 0, monitoring: false, ...options })

t.test('a factory that calls listen() itself: one line naming it, exit 1, nothing left running', async (t) => {
  const marker = `listen-${process.pid}-${Date.now()}`
  const run = await runFixture('cluster.mjs', {
    NODE_ENV: 'development',
    CLUSTER_WORKERS: '2',
    FIXTURE_RUN: marker,
    FIXTURE_FACTORY: 'listen',
    LOG_LEVEL: 'info',
    FIXTURE_BOOT_OPTIONS: boot({ port: await freePort() })
  })
  t.equal(run.code, 1, 'exit 1')
  const lines = run.output.split('\n').filter((line) => line.startsWith('fastify-cluster-kit: '))
  t.equal(lines.length, 1, 'one line for the user')
  t.match(lines[0], /Cluster start failed: worker [01] did not become ready: failed to start: The bootCluster factory called listen\(\) itself: return the app without listening; bootCluster listens/)
  t.notMatch(run.output, /cluster ready/, 'the primary never said the cluster was ready')
  t.same(await waitGone(pidsWithMarker(marker)), [], 'no worker left behind')

  const single = await runFixture('cluster.mjs', { NODE_ENV: 'test', FIXTURE_FACTORY: 'listen', FIXTURE_BOOT_OPTIONS: boot({ port: 0 }) })
  t.equal(single.code, 1, 'one process: exit 1 as well')
  t.match(single.output, /^fastify-cluster-kit: The bootCluster factory called listen\(\) itself/m)
})

t.test('an option and its variable that differ: one warning naming both; a bad variable is refused', async (t) => {
  const optionPort = await freePort()
  const cluster = await startCluster(t, { PORT: String(await freePort()), LOG_LEVEL: 'warn' }, { port: optionPort })
  const warnings = cluster.output().split('\n').filter((line) => line.includes('is ignored'))
  t.equal(warnings.length, 1, 'one line, from the primary only')
  t.match(JSON.parse(warnings[0] as string), { level: 40, msg: /^PORT=\d+ is ignored: the port option \(\d+\) wins$/ })
  t.equal((await get(optionPort, '/')).status, 200, 'the option wins')

  const bad = await runFixture('cluster.mjs', { NODE_ENV: 'development', PORT: 'abc', FIXTURE_BOOT_OPTIONS: boot({ port: await freePort() }) })
  t.equal(bad.code, 1)
  t.match(bad.output, /^fastify-cluster-kit: Invalid environment variable PORT: got "abc", expected a port number from 0 to 65535$/m,
    'a bad value is reported even where an option overrides it')

  const secret = await runFixture('cluster.mjs', {
    NODE_ENV: 'test',
    CLUSTER_MONITORING_TOKEN: 'from-the-environment',
    FIXTURE_FACTORY: 'throw',
    FIXTURE_BOOT_OPTIONS: JSON.stringify({ port: 0, monitoring: { token: 'from-the-code' } })
  })
  t.notMatch(secret.output, /from-the-environment|from-the-code/, 'a token is never printed')
})

t.test('GRACEFUL_SHUTDOWN_DELAY (ms) delays the listener close of the user\'s own app', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: { GRACEFUL_SHUTDOWN_DELAY: '1500', FIXTURE_LOG_LEVEL: 'warn' } })
  const signalled = Date.now()
  fixture.child.kill('SIGTERM')
  let notReady: number | undefined
  let servedWhileNotReady = false
  while (fixture.child.exitCode === null) {
    try {
      const ready = await get(fixture.port, '/health/ready')
      if (ready.status === 503) {
        notReady ??= Date.now()
        servedWhileNotReady ||= (await get(fixture.port, '/')).status === 200
      }
    } catch {
      break // the listener closed
    }
    await sleep(50)
  }
  t.same(await fixture.exited, { code: 0, signal: null })
  t.ok(notReady !== undefined && servedWhileNotReady, 'readiness 503 while requests are still served')
  t.ok(Date.now() - signalled >= 1500, 'the listener stayed open for the delay')

  const bad = await runFixture('server.mjs', { GRACEFUL_SHUTDOWN_DELAY: '5s' })
  t.match(bad.output, /Invalid environment variable GRACEFUL_SHUTDOWN_DELAY: got "5s", expected a whole number of milliseconds/)
})

t.test('registering the plugin twice: an FCK error that says so', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(clusterPlugin, { handleSignals: false })
  await t.rejects(async () => { await app.register(clusterPlugin, { handleSignals: false }) }, {
    code: 'FCK_REGISTERED_TWICE',
    message: /clusterPlugin is registered twice on this Fastify instance: register it once \(bootCluster registers it only when the factory did not\)/
  })
})

t.test('crashes are warnings, a reload\'s hand-over is no state change', async (t) => {
  const cluster = await startCluster(t, { LOG_LEVEL: 'info' })
  const lines = (): Array<Record<string, any>> => cluster.output().split('\n').filter((line) => line.startsWith('{"level"')).map((line) => JSON.parse(line))
  const victim = (await cluster.call('stats')).workers[0]
  process.kill(victim.pid, 'SIGKILL')
  await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === '0' && event.pid !== victim.pid)
  const crash = lines().find((line) => / -> crashed/.test(line.msg))
  t.match(crash, { level: 40, msg: 'worker 0: ready -> crashed (signal SIGKILL: killed by SIGKILL from outside the kit)' }, 'a crash at warn, with its signal and what it means')
  t.ok(lines().filter((line) => line.level === 30).some((line) => line.msg === 'worker 0: crashed -> starting'), 'a restart at info')

  t.match(await cluster.call('reload'), { ok: true })
  t.notOk(lines().some((line) => / ready -> ready/.test(line.msg)), 'no "ready -> ready" line')
  t.ok(lines().some((line) => line.level === 30 && /^worker [01]: pid \d+ took over \(rolling reload\)$/.test(line.msg)), 'the hand-over is said in words')
})

t.test('inject() carries the worker headers whether or not register() was awaited', async (t) => {
  for (const awaited of [true, false]) {
    const app = Fastify()
    t.teardown(() => app.close())
    if (awaited) await app.register(clusterPlugin, { handleSignals: false })
    else app.register(clusterPlugin, { handleSignals: false }) // not awaited: a common style
    app.get('/', async () => ({ hello: 'world' }))
    const response = await app.inject('/')
    t.equal(response.statusCode, 200)
    t.equal(response.headers['x-worker-id'], 'single', `worker id header, register ${awaited ? '' : 'not '}awaited`)
    t.equal(response.headers['x-worker-pid'], String(process.pid))
    t.equal((await app.inject('/nowhere')).headers['x-worker-id'], 'single', 'and on a 404 after the first inject')
  }
})

t.test('the status page learns the last reload from the server; restarts count replacements after an exit', async (t) => {
  const cluster = await startCluster(t)
  t.equal((await cluster.call('stats')).lastReload, null, 'no reload yet')
  const reload = await cluster.call('reload')
  const stats = await cluster.call('stats')
  t.match(stats.lastReload, { ok: true, durationMs: reload.durationMs, at: /^\d{4}-\d\d-\d\dT/ }, 'stats carry the last reload')
  t.same(stats.workers.map((worker: any) => worker.restarts), [0, 0], 'a reload is not a restart')
  const response = await fetch(`http://127.0.0.1:${cluster.monitoringPort}/cluster/stats`)
  t.match(await response.json(), { lastReload: { ok: true } }, '/cluster/stats serves it (the page renders it on its first sample)')
  const metrics = await (await fetch(`http://127.0.0.1:${cluster.monitoringPort}/metrics`)).text()
  t.match(metrics, /# HELP cluster_worker_restarts_total Workers started in a slot after its worker exited \(crash, exit, kill\); reload and recycle replacements are not counted/)
})
