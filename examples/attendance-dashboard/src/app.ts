import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { clusterPlugin } from '../../../dist/index.js'
// The app uses sessions and rate limits: their types (request.session, a route's config.rateLimit) come with these.
import type {} from '../../../dist/session.js'
import type {} from '../../../dist/rate-limit.js'
import { config } from './config.js'
import { attachRealtime } from './realtime.js'
import { RedisRecords, SqliteRecords, type Action, type Records } from './records.js'

declare module 'fastify' {
  interface Session {
    person?: string
  }
}

const NAME = /^[\p{L}\p{N} .'-]{1,60}$/u

/** The attendance dashboard: sign in, check in and out, and a page that shows who is in, live. */
export async function buildApp (): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, trustProxy: config.trustProxy })
  // First, so its rate limits and sessions apply to every route below. The kit reads REDIS_URL
  // itself (and names it when it is wrong).
  await app.register(clusterPlugin, {
    rateLimit: { global: false },
    session: { secret: config.sessionSecret, cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax', maxAge: 12 * 3600_000 }, saveUninitialized: false }
  })
  // With Redis (several machines or pods), records live there too; else in one SQLite file.
  const records: Records = config.redisUrl === undefined
    ? new SqliteRecords(config.dataDir)
    : new RedisRecords((app as unknown as { redis: Redis }).redis)
  app.addHook('onClose', async () => await records.close())
  const io = await attachRealtime(app, config.redisUrl)
  const page = await readFile(new URL('../public/index.html', import.meta.url), 'utf8')

  app.get('/', async (_request, reply) => await reply.type('text/html; charset=utf-8').send(page))

  app.get('/api/me', async (request) => ({ person: request.session.person ?? null, workerId: app.cluster.workerId }))

  // Per client address, across every worker: each sign-in stores a session, and the store must
  // not be one client's to fill (the kit also caps sessions per client; see primaryStore).
  const signInLimited = config.signInLimit === 0 ? {} : { rateLimit: { max: config.signInLimit, timeWindow: '1 minute' } }
  app.post<{ Body: { name?: unknown } }>('/api/sign-in', {
    config: signInLimited,
    schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } }
  }, async (request, reply) => {
    const name = String(request.body.name).trim()
    if (!NAME.test(name)) return await reply.code(400).send({ error: 'a name of 1 to 60 letters, digits, spaces, dots, apostrophes or dashes' })
    request.session.person = name
    return { person: name, workerId: app.cluster.workerId }
  })

  app.post('/api/sign-out', async (request) => {
    await request.session.destroy()
    return { person: null }
  })

  // Per person, across every worker: the limit lives in the shared store (Redis or the primary).
  const limited = {
    config: {
      rateLimit: {
        max: config.checkInLimit,
        timeWindow: '1 minute',
        keyGenerator: (request: FastifyRequest) => `person:${request.session.person ?? request.ip}`
      }
    }
  }
  const attend = (action: Action) => async (request: FastifyRequest, reply: FastifyReply) => {
    const person = request.session.person
    if (person === undefined) return await reply.code(401).send({ error: 'sign in first' })
    const entry = { ...await records.record(person, action), workerId: app.cluster.workerId }
    io.emit('attendance', entry)
    return entry
  }
  app.post('/api/check-in', limited, attend('in'))
  app.post('/api/check-out', limited, attend('out'))

  app.get('/api/today', async () => ({ workerId: app.cluster.workerId, people: await records.today() }))

  return app
}
