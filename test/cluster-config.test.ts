import { randomUUID } from 'node:crypto'
import net from 'node:net'
import t from 'tap'
import { freePort, pidsWithMarker, waitGone } from './helpers/cluster.js'
import { runFixture } from './helpers/fixture.js'

async function boot (env: NodeJS.ProcessEnv, options: Record<string, unknown> = {}): Promise<{ code: number | null, output: string, left: number[] }> {
  const marker = randomUUID()
  const port = await freePort()
  const { code, output } = await runFixture('cluster.mjs', {
    NODE_ENV: 'development',
    CLUSTER_WORKERS: '2',
    LOG_LEVEL: 'warn',
    FIXTURE_RUN: marker,
    FIXTURE_BOOT_OPTIONS: JSON.stringify({ port, host: '127.0.0.1', healthReportInterval: 0, monitoring: { port: 0 }, ...options }),
    ...env
  })
  return { code, output, left: await waitGone(pidsWithMarker(marker), 3000) }
}

const cases: Array<[string, NodeJS.ProcessEnv, Record<string, unknown>, RegExp]> = [
  ['CLUSTER_WORKERS=abc', { CLUSTER_WORKERS: 'abc' }, {}, /Invalid environment variable CLUSTER_WORKERS: got "abc", expected a whole number of workers >= 1/],
  ['CLUSTER_WORKERS=0', { CLUSTER_WORKERS: '0' }, {}, /CLUSTER_WORKERS: got "0"/],
  ['CLUSTER_WORKERS=-1', { CLUSTER_WORKERS: '-1' }, {}, /CLUSTER_WORKERS: got "-1"/],
  ['WORKER_RESTART_DELAY=soon', { WORKER_RESTART_DELAY: 'soon' }, {}, /Invalid environment variable WORKER_RESTART_DELAY: got "soon"/],
  ['MAX_WORKER_MEMORY=1Q', { MAX_WORKER_MEMORY: '1Q' }, {}, /Invalid environment variable MAX_WORKER_MEMORY: got "1Q", expected bytes/],
  ['PORT=70000', { }, { port: undefined }, /PORT: got "70000", expected a port number from 0 to 65535/],
  ['workers option 0', {}, { workers: 0 }, /Invalid option workers: got 0/],
  ['unknown option', {}, { wokers: 2 }, /Invalid option wokers: got an unknown option/],
  ['a factory that throws', { FIXTURE_FACTORY: 'throw' }, {}, /Cluster start failed: worker [01] did not become ready: failed to start: factory exploded/],
  ['a worker that never listens', { FIXTURE_FACTORY: 'hang' }, { readyTimeout: 500 },
    /Cluster start failed: worker [01] did not become ready: did not listen within readyTimeout \(500 ms\)/],
  ['a factory that returns no Fastify instance', { FIXTURE_FACTORY: 'not-fastify' }, {},
    /Cluster start failed: worker [01] did not become ready: failed to start: bootCluster factory must return a Fastify instance \(or a promise of one\), got an object with keys \[hello\]/],
  ['CLUSTER_MONITORING_HOST=0.0.0.0 without a token', { CLUSTER_MONITORING_HOST: '0.0.0.0' }, { monitoring: undefined },
    /Refusing to serve the monitoring API on 0\.0\.0\.0 \(from CLUSTER_MONITORING_HOST\) without a token/],
  ['CLUSTER_MONITORING_PORT=abc', { CLUSTER_MONITORING_PORT: 'abc' }, { monitoring: undefined },
    /Invalid environment variable CLUSTER_MONITORING_PORT: got "abc", expected a port number from 0 to 65535, or false/]
]

for (const [name, env, options, message] of cases) {
  t.test(`${name}: a clear error, a non-zero exit, nothing left running`, async (t) => {
    const result = await boot(name === 'PORT=70000' ? { ...env, PORT: '70000' } : env, options)
    t.not(result.code, 0, 'non-zero exit')
    t.match(result.output, message)
    t.same(result.left, [], 'no process left behind')
  })
}

t.test('a port already in use: the error names the address, nothing is left running', async (t) => {
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const { port } = blocker.address() as net.AddressInfo
  const result = await boot({}, { port })
  t.not(result.code, 0)
  t.match(result.output, new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`))
  t.same(result.left, [])
})

t.test('the monitoring port already in use: the error names it, nothing is left running', async (t) => {
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const { port } = blocker.address() as net.AddressInfo
  const result = await boot({}, { monitoring: { port } })
  t.not(result.code, 0)
  t.match(result.output, new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use \\(port from monitoring.port / CLUSTER_MONITORING_PORT`))
  t.same(result.left, [])
})
