// bootCluster with the hello route, rate-limited through BACKEND (redis, primary or memory; none:
// no rate limit), with a limit high enough never to trip. REDIS_URL for the redis backend.
import { bootCluster } from '../../dist/index.js'

process.env.CLUSTER_MONITORING_PORT ??= 'false'
const backend = process.env.BACKEND ?? 'none'

const result = await bootCluster(async () => {
  const [{ default: Fastify }, { clusterPlugin }] = await Promise.all([import('fastify'), import('../../dist/index.js')])
  const app = Fastify({ logger: false })
  await app.register(clusterPlugin, backend === 'none' ? {} : { sharedState: backend, rateLimit: { max: 1e9, timeWindow: '1 minute' } })
  app.get('/', async () => ({ hello: 'world' }))
  return app
}, { host: '127.0.0.1', healthReportInterval: 0 })

if (typeof result.stats === 'function') process.stdout.write(JSON.stringify({ listening: Number(process.env.PORT) }) + '\n')
