// The server under test for throughput comparisons: one JSON route, no logging.
// `node hello.mjs bare` is plain Fastify; `node hello.mjs plugin` adds clusterPlugin with its
// defaults, or with the options in PLUGIN_OPTIONS (JSON), e.g. '{"metrics":false}'.
// Under PM2 it sends 'ready' (for wait_ready) in both modes.
import Fastify from 'fastify'
import clusterPlugin from '../../dist/index.js'

const mode = process.argv[2] ?? 'bare'
const app = Fastify({ logger: false })
if (mode === 'plugin') await app.register(clusterPlugin, JSON.parse(process.env.PLUGIN_OPTIONS ?? '{}'))
else if (mode !== 'bare') throw new Error(`unknown mode ${mode}: expected bare or plugin`)
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
// What a bare Fastify app typically does on a stop signal (PM2 sends SIGINT, others SIGTERM).
if (mode === 'bare') for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, async () => { await app.close(); process.exit(0) })
if (mode === 'bare' && process.env.NODE_APP_INSTANCE !== undefined) process.send?.('ready')
process.stdout.write(JSON.stringify({ listening: app.server.address().port }) + '\n')
