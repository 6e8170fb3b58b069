// bootCluster with the hello route, rate-limited through the backend named by the first argument
// or BACKEND (redis, primary or memory; none: no rate limit), with a limit high enough never to
// trip. REDIS_URL for the redis backend; CLUSTER_WORKERS for the worker count; PORT, else a free one.
import cluster from 'node:cluster'
import { bootCluster } from '../../dist/index.js'
import { freePort } from '../lib.mjs'

process.env.CLUSTER_MONITORING_PORT ??= 'false'
// Chosen by the primary: the workers inherit its environment and so listen on the same port.
if (cluster.isPrimary) process.env.PORT ??= String(await freePort())
const backend = process.argv[2] ?? process.env.BACKEND ?? 'none'

const result = await bootCluster(async () => {
  const [{ default: Fastify }, { clusterPlugin }] = await Promise.all([import('fastify'), import('../../dist/index.js')])
  const app = Fastify({ logger: false })
  await app.register(clusterPlugin, backend === 'none' ? {} : { sharedState: backend, rateLimit: { max: 1e9, timeWindow: '1 minute' } })
  app.get('/', async () => ({ hello: 'world' }))
  return app
}, { host: '127.0.0.1', healthReportInterval: 0 })

if (typeof result.stats === 'function') process.stdout.write(JSON.stringify({ listening: Number(process.env.PORT) }) + '\n')
