// The attendance dashboard, clustered: `npm start` at the repository root runs this file with
// NODE_ENV=production (one worker per core). The same file runs as the primary and as each worker.
import { bootCluster } from '../../../dist/index.js'
import { config } from './config.js'

const result = await bootCluster(async () => (await import('./app.js')).buildApp(), {
  // Without Redis, Socket.IO broadcasts between workers travel through the primary.
  onPrimary: async () => {
    if (config.redisUrl === undefined) (await import('@socket.io/cluster-adapter')).setupPrimary()
  }
})

if ('stats' in result) {
  const port = process.env.PORT ?? '3000'
  const monitoring = process.env.CLUSTER_MONITORING_PORT ?? '3003'
  const { expected } = result.stats()
  console.log([
    '',
    `  Attendance dashboard: ${expected} workers, shared state ${config.redisUrl === undefined ? 'in the primary (no Redis)' : 'in Redis'}`,
    `  Dashboard   http://127.0.0.1:${port}/`,
    `  Health      http://127.0.0.1:${port}/health`,
    ...(monitoring === 'false'
      ? []
      : [`  Monitoring  http://127.0.0.1:${monitoring}/cluster/stats   (npm run cluster:monitor, npm run cluster:restart)`]),
    `  Stop with Ctrl-C (graceful); kill -HUP ${process.pid} for a rolling reload`,
    ''
  ].join('\n'))
}
