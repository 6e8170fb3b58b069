import { freePort, startRedis, startServer } from '../lib.mjs'

// What a cluster-wide rate limit costs per request: the same route on 2 workers without a rate
// limit and with one (never tripped) whose counters live in Redis, in the bootCluster primary
// (IPC), or in each worker's memory (per-worker limits, the fast but not cluster-wide choice).
const WORKERS = '2'

async function cluster (backend, env = {}) {
  return await startServer('rate-limit.mjs', [], { env: { PORT: String(await freePort()), CLUSTER_WORKERS: WORKERS, LOG_LEVEL: 'warn', BACKEND: backend, ...env }, cpus: '0-1' })
}

export default {
  name: 'rate-limit',
  description: 'GET / on 2 workers (bootCluster): no rate limit vs @fastify/rate-limit (never tripped) with counters in Redis, in the primary, or per worker in memory; 100 keep-alive connections',
  baseline: 'no rate limit',
  // The goal of a cluster-wide limit: cost what the per-worker (memory) limit costs.
  compare: [['redis', 'memory'], ['primary', 'memory']],
  load: { path: '/', connections: 100 },
  variants: {
    'no rate limit': async () => await cluster('none'),
    redis: async () => {
      const redis = await startRedis()
      const server = await cluster('redis', { REDIS_URL: redis.url })
      return { ...server, async stop () { await server.stop(); await redis.stop() } }
    },
    primary: async () => await cluster('primary'),
    memory: async () => await cluster('memory')
  }
}
