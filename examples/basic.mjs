// The smallest app on the kit: one process, clusterPlugin, graceful on SIGTERM/SIGINT.
// Run it with `npm start`, then try /, /health, /health/ready and Ctrl-C.
import Fastify from 'fastify'
import clusterPlugin from '../dist/index.js'

const app = Fastify({ logger: true })
await app.register(clusterPlugin, { shutdownDelay: Number(process.env.SHUTDOWN_DELAY ?? 0) })
app.get('/', async (request) => ({ hello: 'world', worker: request.server.cluster.workerId }))
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '0.0.0.0' })
