import { freePort, startPm2, startServer } from '../lib.mjs'

// Two workers on two cores, three ways users run them. Everything (servers and autocannon) shares
// the two cores, the same for each variant.
export default {
  name: 'cluster-throughput',
  description: 'GET / on 2 workers: a plain node:cluster script (bare Fastify, and with clusterPlugin) vs bootCluster vs pm2 -i 2 (bare Fastify), 100 keep-alive connections',
  baseline: 'plain-cluster',
  goal: { variant: 'bootCluster', min: 0.98, text: 'bootCluster/plain-cluster median of per-round ratios >= 0.98' },
  // The same workers with and without the supervisor: what bootCluster's primary itself costs.
  compare: [['bootCluster', 'plain-cluster + clusterPlugin'], ['plain-cluster + clusterPlugin', 'plain-cluster']],
  load: { path: '/', connections: 100 },
  variants: {
    'plain-cluster': async () => await startServer('plain-cluster.mjs', [], { env: { PORT: String(await freePort()), CLUSTER_WORKERS: '2' }, cpus: '0-1' }),
    'plain-cluster + clusterPlugin': async () => await startServer('plain-cluster.mjs', [], { env: { PORT: String(await freePort()), CLUSTER_WORKERS: '2', PLUGIN: '1' }, cpus: '0-1' }),
    bootCluster: async () => await startServer('boot.mjs', [], { env: { PORT: String(await freePort()), CLUSTER_WORKERS: '2', LOG_LEVEL: 'warn' }, cpus: '0-1' }),
    'pm2 -i 2': async () => await startPm2('hello.mjs', ['bare'], 2)
  }
}
