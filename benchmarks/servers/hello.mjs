// The server under test for throughput comparisons: one JSON route, no logging.
//   node hello.mjs bare              plain Fastify
//   node hello.mjs headers           plain Fastify whose route sets two constant headers itself (what
//                                    X-Worker-ID and X-Worker-PID cost wherever they come from)
//   node hello.mjs peers             what a user assembles from the ecosystem instead of the kit:
//                                    fastify-metrics (its defaults: default metrics and a route
//                                    histogram), @fastify/under-pressure (health route, event-loop
//                                    and memory limits), an onSend hook setting the two worker
//                                    headers, and close-with-grace closing Fastify on a signal
//   node hello.mjs plugin [OPTIONS] [DIST]
//                                    Fastify + clusterPlugin, with its defaults or the JSON OPTIONS,
//                                    e.g. '{"metrics":false}'; from another build's dist/ folder if
//                                    DIST names one (paired runs of two builds: before vs after)
// Under PM2 it sends 'ready' (for wait_ready) in the modes without the plugin.
import Fastify from 'fastify'

const [mode = 'bare', options = '{}', dist = new URL('../../dist', import.meta.url).pathname] = process.argv.slice(2)
// Loaded in every mode, so each server carries the same code (what a process has loaded moves
// where V8's optimizations settle: benchmarks/RESULTS.md, "Issue 29").
const { default: clusterPlugin } = await import(`${dist}/index.js`)
const app = Fastify({ logger: false })
const pid = String(process.pid)
if (mode === 'plugin') {
  await app.register(clusterPlugin, JSON.parse(options))
} else if (mode === 'peers') {
  const [{ default: metrics }, { default: underPressure }, { default: closeWithGrace }] =
    await Promise.all([import('fastify-metrics'), import('@fastify/under-pressure'), import('close-with-grace')])
  await app.register(metrics, { endpoint: '/metrics' })
  await app.register(underPressure, { maxEventLoopDelay: 1000, maxHeapUsedBytes: 1e9, exposeStatusRoute: '/health' })
  app.addHook('onSend', async (_request, reply) => { reply.header('x-worker-id', 'single').header('x-worker-pid', pid) })
  closeWithGrace({ delay: 10_000 }, async () => { await app.close() })
} else if (mode !== 'bare' && mode !== 'headers') throw new Error(`unknown mode ${mode}: expected bare, headers, peers or plugin`)
if (mode === 'headers') {
  app.get('/', async (_request, reply) => {
    reply.header('x-worker-id', 'single').header('x-worker-pid', pid)
    return { hello: 'world' }
  })
} else {
  app.get('/', async () => ({ hello: 'world' }))
}
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
if (mode === 'bare' || mode === 'headers') {
  // What a bare Fastify app typically does on a stop signal (PM2 sends SIGINT, others SIGTERM).
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, async () => { await app.close(); process.exit(0) })
  if (process.env.NODE_APP_INSTANCE !== undefined) process.send?.('ready')
}
process.stdout.write(JSON.stringify({ listening: app.server.address().port }) + '\n')
