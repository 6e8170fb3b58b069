import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort, pidsWithMarker, startCluster, waitGone } from './helpers/cluster.js'
import { runFixture } from './helpers/fixture.js'
import { get } from './helpers/http.js'

/** Boots the cluster fixture to its exit: code, what it printed, how long it took, what it left running. */
async function boot (env: NodeJS.ProcessEnv, options: Record<string, unknown> = {}): Promise<{ code: number | null, lines: string[], ms: number, left: number[] }> {
  const marker = randomUUID()
  const started = Date.now()
  const { code, output } = await runFixture('cluster.mjs', {
    NODE_ENV: 'development',
    CLUSTER_WORKERS: '2',
    LOG_LEVEL: 'warn',
    FIXTURE_RUN: marker,
    FIXTURE_BOOT_OPTIONS: JSON.stringify({ port: await freePort(), host: '127.0.0.1', healthReportInterval: 0, monitoring: false, ...options }),
    ...env
  })
  return { code, lines: output.trim().split('\n'), ms: Date.now() - started, left: await waitGone(pidsWithMarker(marker), 3000) }
}

const cases: Array<[string, NodeJS.ProcessEnv, Record<string, unknown>, RegExp]> = [
  ['CLUSTER_WORKERS=100000 (a fork bomb)', { CLUSTER_WORKERS: '100000' }, {},
    /^fastify-cluster-kit: Invalid environment variable CLUSTER_WORKERS: got "100000", expected a whole number of workers >= 1 and <= \d+ \(4 per core on \d+ cores; allowOversubscribe or CLUSTER_ALLOW_OVERSUBSCRIBE=true allows up to 1024\)$/],
  ['CLUSTER_WORKERS=2000 with CLUSTER_ALLOW_OVERSUBSCRIBE=true', { CLUSTER_WORKERS: '2000', CLUSTER_ALLOW_OVERSUBSCRIBE: 'true' }, {},
    /^fastify-cluster-kit: Invalid environment variable CLUSTER_WORKERS: got "2000", expected a whole number of workers >= 1 and <= 1024$/],
  ['MAX_WORKER_MEMORY=512', { MAX_WORKER_MEMORY: '512' }, {},
    /^fastify-cluster-kit: Invalid environment variable MAX_WORKER_MEMORY: got "512", expected bytes .* at least 64M$/],
  ['MAX_WORKER_MEMORY=40M', { MAX_WORKER_MEMORY: '40M' }, {}, /^fastify-cluster-kit: Invalid environment variable MAX_WORKER_MEMORY: got "40M"/],
  ['GRACEFUL_SHUTDOWN_TIMEOUT of a year', { GRACEFUL_SHUTDOWN_TIMEOUT: '31536000000' }, {},
    /^fastify-cluster-kit: Invalid environment variable GRACEFUL_SHUTDOWN_TIMEOUT: got "31536000000", expected a whole number of milliseconds >= 1 and <= 86400000$/],
  ['REDIS_URL=notaurl', { REDIS_URL: 'notaurl' }, {},
    /^fastify-cluster-kit: Invalid environment variable REDIS_URL: got "notaurl", expected a redis:\/\/ or rediss:\/\/ URL$/],
  ['a typo in the plugin options, refused before any fork', {}, { plugin: { wokerIdHeader: 'X-Id' } },
    /^fastify-cluster-kit: Invalid option wokerIdHeader: got an unknown option, expected /],
  ['heartbeatInterval not well below heartbeatTimeout', {}, { heartbeatTimeout: 1000, plugin: { heartbeatInterval: 800 } },
    /^fastify-cluster-kit: Invalid option heartbeatInterval: got 800, expected a whole number of milliseconds >= 10 and <= 500$/],
  ['a plugin gracefulTimeout other than bootCluster\'s', {}, { gracefulTimeout: 5000, plugin: { gracefulTimeout: 60_000 } },
    /^fastify-cluster-kit: Invalid option gracefulTimeout: got 60000, expected bootCluster's gracefulTimeout \(5000 ms\): under bootCluster set it on bootCluster/],
  ['shutdownDelay not below gracefulTimeout', {}, { gracefulTimeout: 5000, plugin: { shutdownDelay: 5000 } },
    /^fastify-cluster-kit: Invalid option shutdownDelay: got 5000, expected a whole number of milliseconds >= 0 and <= 4999$/],
  ['one process: PORT=abc', { ENABLE_CLUSTERING: 'false', PORT: 'abc' }, { port: undefined },
    /^fastify-cluster-kit: Invalid environment variable PORT: got "abc", expected a port number from 0 to 65535$/]
]

for (const [name, env, options, message] of cases) {
  t.test(`${name}: exit 1, one line naming it, nothing left running`, async (t) => {
    const result = await boot(env, options)
    t.equal(result.code, 1, 'exit 1')
    t.equal(result.lines.length, 1, `one line, no stack: ${JSON.stringify(result.lines.slice(0, 3))}`)
    t.match(result.lines[0], message)
    t.same(result.left, [], 'no process left behind')
  })
}

t.test('REDIS_URL where nothing answers: one line naming Redis, within storeTimeout, not a plugin timeout', async (t) => {
  const result = await boot({ REDIS_URL: 'redis://127.0.0.1:1', FIXTURE_PLUGIN_OPTIONS: JSON.stringify({ rateLimit: { max: 10 } }) })
  t.equal(result.code, 1)
  t.equal(result.lines.length, 1, `one line: ${JSON.stringify(result.lines.slice(0, 3))}`)
  t.match(result.lines[0], /^fastify-cluster-kit: Cluster start failed: worker [01] did not become ready: failed to start: Redis at redis:\/\/127\.0\.0\.1:1\/? \(from REDIS_URL\) did not answer within storeTimeout \(500 ms\): .*ECONNREFUSED/)
  // Generous for a busy machine: what matters is that it is not Fastify's 10 s plugin timeout.
  t.ok(result.ms < 8000, `failed after ${result.ms} ms`)
  t.same(result.left, [])
})

t.test('maxMemory below what a worker starts with: one recycle, then recycling stops, health and /metrics say so', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1', FIXTURE_BALLAST_MB: '100' }, { maxMemory: '96M' })
  const stopped = await cluster.waitForEvent((event) => event.event === 'unhealthy', 15_000)
  t.match(stopped.warnings, [/worker 0 starts above maxMemory \(rss \d+ > 100663296 bytes\): memory recycling stopped/])
  const { workers } = await cluster.call('stats')
  t.match(workers[0], { state: 'ready', recycles: 1, recyclingStopped: /starts above maxMemory/ })
  await sleep(3000)
  t.equal((await cluster.call('stats')).workers[0].recycles, 1, 'no recycle loop: still one recycle 3 s later')
  t.match(await cluster.call('health'), { status: 'degraded' })
  const metrics = (await get(cluster.monitoringPort, '/metrics')).body
  t.match(metrics, /cluster_worker_recycles_total\{worker="0"\} 1\n/)
  t.match(metrics, /cluster_worker_recycling_stopped\{worker="0"\} 1\n/)
  t.match(cluster.output(), /memory recycling stopped for it, since every replacement would be recycled again; raise maxMemory/)
})
