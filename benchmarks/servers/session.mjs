// bootCluster with one worker whose route uses a session held in the primary's store (the
// `primary` backend): what a request costs the worker and the primary together.
//   node session.mjs none [DIST]     no session: the plugin as a bootCluster worker runs it
//   node session.mjs create [DIST]   every request signs in anew: a new session stored per request
//                                    (the store's write path; past a client's bound, its eviction)
//   node session.mjs read [DIST]     every request carries one session's cookie: one read of the
//                                    store per request (a signed-in user's path)
// From another build's dist/ folder if DIST names one (paired runs of two builds).
// Prints `{"listening":PORT}` once the worker listens.
import net from 'node:net'

const [mode = 'read', dist = new URL('../../dist', import.meta.url).pathname] = process.argv.slice(2)
if (!['none', 'create', 'read'].includes(mode)) throw new Error(`unknown mode ${mode}: expected none, create or read`)
const { default: clusterPlugin, bootCluster } = await import(`${dist}/index.js`)

const port = process.env.PORT ?? String(await new Promise((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)) })
}))
process.env.PORT = port
process.env.CLUSTER_WORKERS = '1'
process.env.CLUSTER_MONITORING_PORT = 'false'

const result = await bootCluster(async () => {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false })
  let cookie
  // Before the plugin's hooks, so @fastify/session sees the cookie: load without cookies reads one session.
  if (mode === 'read') app.addHook('onRequest', async (request) => { if (cookie !== undefined) request.headers.cookie = cookie })
  if (mode === 'none') {
    await app.register(clusterPlugin)
    app.get('/', async () => ({ hello: 'world' }))
    return app
  }
  await app.register(clusterPlugin, { session: { secret: 'a benchmark secret of at least 32 characters', cookie: { secure: false } } })
  app.get('/', async (request) => {
    if (request.session.get('user') === undefined) request.session.set('user', { name: 'Ada Lovelace', since: Date.now() })
    return { hello: 'world' }
  })
  app.addHook('onSend', async (_request, reply) => {
    const set = reply.getHeader('set-cookie')
    if (mode === 'read' && cookie === undefined && set !== undefined) cookie = String([set].flat()[0]).split(';')[0]
  })
  return app
}, { host: '127.0.0.1', healthReportInterval: 0 })

if (typeof result.stats === 'function') process.stdout.write(JSON.stringify({ listening: Number(port) }) + '\n')
