// bootCluster with the hello route: CLUSTER_WORKERS workers on PORT. Prints `{"listening":PORT}`
// when every worker listens, then `{"event":...,"at":epochMs}` per cluster event.
// Fastify is imported inside the factory, so only workers load it; APP_IMPORT=eager loads it at
// the top of the entry file (in the primary too), as an entry file with static imports does.
// The factory registers clusterPlugin before its route, as the README's usage does (and as
// plain-cluster.mjs with PLUGIN=1 does), so bootCluster and plain node:cluster run the same workers.
// The monitoring server listens on CLUSTER_MONITORING_PORT, a free port when unset (so clusters
// measured side by side do not collide on 3003); `false` turns it off. HOST (127.0.0.1 unless set)
// is the address, PLUGIN_OPTIONS the plugin's options as JSON (e.g. '{"shutdownDelay":2000}'),
// HEARTBEAT_TIMEOUT bootCluster's heartbeatTimeout; GET /hang blocks the worker that takes it.
import v8 from 'node:v8'
import clusterPlugin, { bootCluster } from '../../dist/index.js'

process.env.CLUSTER_MONITORING_PORT ??= '0'

if (process.env.APP_IMPORT === 'eager') await import('fastify')

const result = await bootCluster(async () => {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false })
  await app.register(clusterPlugin, JSON.parse(process.env.PLUGIN_OPTIONS ?? '{}'))
  app.get('/', async () => ({ hello: 'world' }))
  // The hang benchmark: a route whose event loop never comes back, in a function with a name.
  app.get('/hang', async () => spinForever())
  return app
}, {
  host: process.env.HOST ?? '127.0.0.1',
  healthReportInterval: 0,
  restartWindow: Number(process.env.RESTART_WINDOW ?? 30_000),
  ...(process.env.HEARTBEAT_TIMEOUT ? { heartbeatTimeout: Number(process.env.HEARTBEAT_TIMEOUT) } : {})
})

function spinForever () {
  for (let n = 0; ; n = (n + 1) | 0) { /* a blocked event loop */ }
}

if (typeof result.stats === 'function') {
  process.stdout.write(JSON.stringify({ listening: Number(process.env.PORT) }) + '\n')
  for (const event of ['worker:ready', 'worker:exit', 'reload:done', 'reload:failed']) {
    result.on(event, (detail) => process.stdout.write(JSON.stringify({ event, at: Date.now(), ...detail }) + '\n'))
  }
  // For the monitoring soak: SIGUSR2 prints the size of V8's young generation and how much of it
  // is resident; it grows in steps under a sustained allocation rate, and RSS follows over the
  // next collections as the new pages are first written, by tens of MiB. With
  // --expose-gc (SOAK_FORCE_GC) it first collects garbage, twice since the first can leave
  // finalized objects for the second, so RSS reads what the primary retains.
  process.on('SIGUSR2', () => {
    if (typeof globalThis.gc === 'function') {
      globalThis.gc()
      globalThis.gc()
    }
    const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')
    process.stdout.write(JSON.stringify({ event: 'heap', at: Date.now(), youngGeneration: young?.space_size ?? null, youngGenerationResident: young?.physical_space_size ?? null }) + '\n')
  })
}
