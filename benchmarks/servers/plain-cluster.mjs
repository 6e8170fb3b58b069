// What a hand-written node:cluster script looks like: CLUSTER_WORKERS workers running bare
// Fastify on PORT (on HOST, 127.0.0.1 unless set), replaced when they die, closed on SIGTERM, with
// the health route a load balancer checks answering 200 while the process runs. Prints
// `{"listening":PORT}` once all listen.
// PLUGIN=1 registers clusterPlugin in the workers, to tell the plugin's cost from the supervisor's.
import cluster from 'node:cluster'
import Fastify from 'fastify'
import clusterPlugin from '../../dist/index.js'

const workers = Number(process.env.CLUSTER_WORKERS ?? 2)
const port = Number(process.env.PORT)
if (cluster.isPrimary) {
  let listening = 0
  cluster.on('listening', () => {
    if (++listening === workers) process.stdout.write(JSON.stringify({ listening: port }) + '\n')
  })
  cluster.on('exit', (worker, code) => { if (code !== 0) cluster.fork() })
  for (let i = 0; i < workers; i++) cluster.fork()
  process.once('SIGTERM', () => { for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM') })
} else {
  const app = Fastify({ logger: false })
  if (process.env.PLUGIN === '1') await app.register(clusterPlugin, { handleSignals: false })
  app.get('/', async () => ({ hello: 'world' }))
  app.get('/health/ready', async () => ({ status: 'ok' }))
  await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' })
  process.once('SIGTERM', async () => { await app.close(); process.exit(0) })
}
