import { startServer } from '../lib.mjs'

// What clusterPlugin costs a worker: the same route on bare Fastify and on Fastify with the
// plugin (headers, request tracking, health routes, heartbeat sampler), one process each.
export default {
  name: 'overhead',
  description: 'GET / on bare Fastify vs Fastify + clusterPlugin, one process each, 50 keep-alive connections',
  baseline: 'bare',
  goal: { min: 0.97, text: 'median of per-round plugin/bare req/s ratios >= 0.97' },
  load: { path: '/', connections: 50 },
  variants: {
    bare: () => startServer('hello.mjs', ['bare']),
    plugin: () => startServer('hello.mjs', ['plugin'])
  }
}
