import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startFixture, waitForOutput } from './helpers/fixture.js'
import { get, keepAliveLoad } from './helpers/http.js'

const options = (extra: Record<string, unknown>): NodeJS.ProcessEnv => ({ FIXTURE_PLUGIN_OPTIONS: JSON.stringify(extra) })

t.test('SIGTERM under keep-alive load: every request answered 2xx, slow request completes, exit 0', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', {
    env: { ...options({ shutdownDelay: 1000 }), FIXTURE_LOG_LEVEL: 'warn' }
  })
  const slow = get(fixture.port, '/slow?ms=3000')
  const load = keepAliveLoad(fixture.port, 50)
  await sleep(1000)

  fixture.child.kill('SIGTERM')
  const readiness: number[] = []
  while (fixture.child.exitCode === null) {
    try {
      readiness.push((await get(fixture.port, '/health/ready')).status)
    } catch {
      break // the listener closed after shutdownDelay
    }
    await sleep(50)
  }
  const exit = await fixture.exited
  const result = await load.stop()
  const slowResponse = await slow

  t.same(result.errors, {}, 'no request failed at the socket level')
  t.equal(result.non2xx, 0, 'no non-2xx answer')
  t.equal(result.ok, result.sent, `all ${result.sent} requests sent got a 2xx`)
  t.ok(result.sent > 500, `steady load before the signal (${result.sent} requests)`)
  t.equal(result.closedByServer, 50, 'every keep-alive client was told Connection: close')
  t.equal(slowResponse.status, 200, 'the 3 s request in flight completed')
  t.equal(slowResponse.headers.connection, 'close', 'and told its client to close')
  t.ok(readiness.includes(503), `readiness answered 503 during the drain (${readiness.join(',')})`)
  // A signal is handled on a later turn of the event loop than kill() returns: a probe already
  // read may still see 200. Once the drain has begun, readiness never turns back.
  t.notOk(readiness.slice(readiness.indexOf(503)).includes(200), 'and never 200 again once the drain began')
  t.same(exit, { code: 0, signal: null }, 'exit code 0')
})

t.test('a request still running at gracefulTimeout: exit 1 and the log names it', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: options({ gracefulTimeout: 1000 }) })
  const slow = get(fixture.port, '/slow?ms=5000').catch((error: Error) => error)
  await waitForOutput(fixture.output, '/slow?ms=5000')
  fixture.child.kill('SIGTERM')
  const exit = await fixture.exited
  t.same(exit, { code: 1, signal: null }, 'exit code 1')
  t.match(fixture.output(), /graceful shutdown timed out after 1000 ms while draining connections: 1 request\(s\) in flight \[GET \/slow\?ms=5000\]/)
  t.type(await slow, Error, 'the unfinished request was cut off')
})

t.test('a second signal forces exit 1 at once', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: options({}) })
  const slow = get(fixture.port, '/slow?ms=10000').catch((error: Error) => error)
  await waitForOutput(fixture.output, '/slow?ms=10000')
  fixture.child.kill('SIGINT')
  await waitForOutput(fixture.output, 'graceful shutdown: draining')
  fixture.child.kill('SIGINT')
  t.same(await fixture.exited, { code: 1, signal: null })
  t.match(fixture.output(), /second SIGINT during graceful shutdown: forcing exit/)
  await slow
})

for (const [name, message] of [
  ['our primary\'s shutdown message', { type: 'fck:shutdown', reason: 'reload' }],
  ['PM2\'s shutdown message', 'shutdown']
] as const) {
  t.test(`${name} drains, runs onClose hooks and exits 0`, async (t) => {
    const fixture = await startFixture(t, 'server.mjs', { env: { ...options({}), FIXTURE_ON_CLOSE_LOG: '1' } })
    const slow = get(fixture.port, '/slow?ms=500')
    await waitForOutput(fixture.output, '/slow?ms=500')
    fixture.child.send(message)
    t.equal((await slow).status, 200, 'in-flight request completed')
    t.same(await fixture.exited, { code: 0, signal: null })
    t.match(fixture.output(), /onClose hook ran/)
    t.match(fixture.output(), /graceful shutdown: done/)
  })
}

t.test('an idle keep-alive connection is closed after the grace period, not before', async (t) => {
  const fixture = await startFixture(t, 'server.mjs', { env: options({}) })
  const { Agent } = await import('node:http')
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  t.equal((await get(fixture.port, '/', agent)).headers.connection, 'keep-alive')
  const [socket] = Object.values(agent.freeSockets).flat()
  t.ok(socket, 'an idle keep-alive socket')
  const closed = once(socket!, 'close')
  const started = Date.now()
  fixture.child.kill('SIGTERM')
  await closed
  t.ok(Date.now() - started >= 900, 'idle socket kept for the grace period')
  t.same(await fixture.exited, { code: 0, signal: null })
})
