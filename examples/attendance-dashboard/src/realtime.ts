import type { FastifyInstance } from 'fastify'
import { Server } from 'socket.io'

/**
 * Socket.IO on the app's own server. Websocket transport only: HTTP long-polling needs every
 * request of one client to reach the same worker (sticky sessions), which round-robin across
 * workers does not give; a websocket is one connection, so it stays on its worker by itself.
 * Broadcasts reach clients on every worker through an adapter: Redis pub/sub when REDIS_URL is
 * set, else the bootCluster primary (@socket.io/cluster-adapter, see server.ts), else (one
 * process, or PM2 without Redis) this worker only.
 */
export async function attachRealtime (app: FastifyInstance, redisUrl: string | undefined): Promise<Server> {
  const io = new Server(app.server, { transports: ['websocket'], serveClient: true })
  if (redisUrl !== undefined) {
    const [{ Redis }, { createAdapter }] = await Promise.all([import('ioredis'), import('@socket.io/redis-adapter')])
    const publisher = new Redis(redisUrl)
    const subscriber = publisher.duplicate()
    io.adapter(createAdapter(publisher, subscriber))
    app.addHook('onClose', async () => { await Promise.all([publisher.quit(), subscriber.quit()]) })
  } else if (app.cluster.manager === 'bootCluster') {
    const { createAdapter } = await import('@socket.io/cluster-adapter')
    io.adapter(createAdapter())
  } else if (app.cluster.manager === 'pm2') {
    app.log.warn('attendance-dashboard: no REDIS_URL under PM2: live updates reach only the clients of the worker that made them')
  }
  io.on('connection', (socket) => {
    socket.emit('hello', { workerId: app.cluster.workerId })
  })
  app.addHook('onClose', async () => { await new Promise<void>((resolve) => { io.close(() => resolve()) }) })
  return io
}
