// An app whose GET / answers as "the release on disk" says, read from RELEASE_FILE when each
// worker starts: `{"status":500}` is a release that starts fine and then answers 500, as a bad
// deploy does. `node release.mjs boot` runs it under bootCluster (CLUSTER_* settings from the
// environment, events on stdout as boot.mjs prints them); `node release.mjs` runs one process the
// way a bare Fastify app under PM2 does (closes on SIGINT, sends 'ready').
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { bootCluster } from '../../dist/index.js'

const [mode = 'bare'] = process.argv.slice(2)

function app () {
  const { status } = JSON.parse(readFileSync(process.env.RELEASE_FILE, 'utf8'))
  const server = Fastify({ logger: false })
  server.get('/', async (_request, reply) => status === undefined ? { hello: 'world' } : await reply.code(status).send({ error: 'broken release' }))
  return server
}

if (mode === 'boot') {
  process.env.CLUSTER_MONITORING_PORT ??= '0'
  const result = await bootCluster(app, { host: '127.0.0.1', healthReportInterval: 0 })
  if (typeof result.stats === 'function') {
    process.stdout.write(JSON.stringify({ listening: Number(process.env.PORT) }) + '\n')
    for (const event of ['reload:done', 'reload:failed']) {
      result.on(event, (detail) => process.stdout.write(JSON.stringify({ event, at: Date.now(), ...detail }) + '\n'))
    }
  }
} else {
  const server = app()
  await server.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, async () => { await server.close(); process.exit(0) })
  if (process.env.NODE_APP_INSTANCE !== undefined) process.send?.('ready')
  process.stdout.write(JSON.stringify({ listening: server.server.address().port }) + '\n')
}
