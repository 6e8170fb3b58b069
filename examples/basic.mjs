// The smallest app on the kit, clustered: `npm start` runs it with one worker per core
// (NODE_ENV=production profile). Try /, /health, `kill -HUP <primary pid>` (rolling reload), Ctrl-C.
import Fastify from 'fastify'
import clusterPlugin, { bootCluster } from '../dist/index.js'

await bootCluster(async () => {
  const app = Fastify({ logger: true })
  await app.register(clusterPlugin, { shutdownDelay: Number(process.env.SHUTDOWN_DELAY ?? 0) })
  app.get('/', async (request) => ({ hello: 'world', worker: request.server.cluster.workerId }))
  return app
})
