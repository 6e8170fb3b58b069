import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { FCK_INVALID_OPTION, FCK_REDIS_UNAVAILABLE, storeUnavailable } from './errors.js'
import type { Checks } from './health.js'
import type { Identity } from './identity.js'
import type { RedisConfig, ResolvedSharedState } from './options.js'
import { PrimaryState } from './stores/primary-state.js'
import { PrimarySessionStore, RedisSessionStore } from './stores/sessions.js'

/** Where cluster-wide state (rate limits, sessions) lives. */
export type SharedStateBackend = 'redis' | 'primary' | 'memory'

type Incr = (key: string, timeWindow: number, max: number, continueExceeding: boolean) => Promise<{ current: number, ttl: number }>

const require = createRequire(import.meta.url)

/** `redis` when Redis is configured, else `primary` under bootCluster, else `memory`; or what `sharedState` asks, if it can be had. */
export function chooseBackend ({ backend, redis }: ResolvedSharedState, identity: Identity): SharedStateBackend {
  if (backend === 'redis' && redis === undefined) throw new FCK_INVALID_OPTION('sharedState', '"redis"', 'a Redis: set the redis option, REDIS_URL or REDIS_HOST')
  if (backend === 'primary' && identity.manager !== 'bootCluster') throw new FCK_INVALID_OPTION('sharedState', '"primary"', 'a process forked by bootCluster')
  if (backend !== undefined) return backend
  if (redis !== undefined) return 'redis'
  return identity.manager === 'bootCluster' ? 'primary' : 'memory'
}

/**
 * Registers what the options ask for: one Redis connection (@fastify/redis, unless the app
 * registered one), @fastify/rate-limit and @fastify/session (with @fastify/cookie), each with the
 * backend's store. `onStoreError` hears every store failure (the plugin logs and counts it).
 */
export async function registerSharedState (
  fastify: FastifyInstance,
  options: ResolvedSharedState,
  backend: SharedStateBackend,
  deps: { identity: Identity, checks: Checks, onStoreError: (store: string, error: Error) => void }
): Promise<void> {
  const { rateLimit, session } = options
  if (backend === 'memory' && deps.identity.manager === 'pm2' && (rateLimit !== undefined || session !== undefined)) {
    fastify.log.warn('clusterPlugin: no Redis configured under PM2: rate limits and sessions are per worker (set REDIS_URL to share them)')
  }
  let redis: Redis | undefined
  let primary: PrimaryState | undefined
  if (backend === 'redis') {
    redis = await connectRedis(fastify, options)
    const client = redis
    // Answers at once while Redis is away (no offline queue), and turns ready again when it is back.
    deps.checks.add('redis', async () => (await client.ping()) === 'PONG', { timeout: options.storeTimeout })
  } else if (backend === 'primary' && (rateLimit !== undefined || session !== undefined)) {
    primary = new PrimaryState(options.storeTimeout)
    const state = primary
    fastify.addHook('onClose', async () => state.stop())
  }

  if (rateLimit !== undefined) {
    const incr = redis !== undefined ? redisIncr(redis) : primary !== undefined ? primaryIncr(primary) : undefined
    const store = incr === undefined ? undefined : counterStore(backend, incr, (error) => deps.onStoreError('rate-limit', error))
    await registerOfficial(fastify, 'rateLimit', '@fastify/rate-limit', {
      ...rateLimit,
      ...(store === undefined ? {} : { store }),
      skipOnError: options.onStoreError === 'fail-open'
    })
  }
  if (session !== undefined) {
    const onError = (error: Error): void => deps.onStoreError('session', error)
    const store = redis !== undefined
      ? new RedisSessionStore(redis, { onError })
      : primary !== undefined ? new PrimarySessionStore(primary, { onError }) : undefined
    if (!fastify.hasDecorator('parseCookie')) await registerOfficial(fastify, 'session', '@fastify/cookie', {})
    // A session is stored (and its cookie set) only once a request puts something in it, unless
    // the app says otherwise: anonymous traffic then costs the store nothing and cannot evict anyone.
    await registerOfficial(fastify, 'session', '@fastify/session', {
      saveUninitialized: false,
      ...session,
      ...(store === undefined || session.store !== undefined ? {} : { store })
    })
  }
}

/** Registers an official plugin; what it rejects becomes an error naming our option. */
async function registerOfficial (fastify: FastifyInstance, option: string, name: string, settings: object): Promise<void> {
  try {
    await fastify.register(require(name), settings)
  } catch (error) {
    // The secret stays out of the message, and so does the store (it holds a Redis client).
    const shown = JSON.stringify(settings, (key, value) => key === 'secret' ? '<hidden>' : key === 'store' ? '<store>' : value)
    throw new FCK_INVALID_OPTION(option, shown, `options ${name} accepts (${(error as Error).message})`)
  }
}

/**
 * The app's client when it decorated `fastify.redis` (@fastify/redis), else a new one, decorated
 * as `fastify.redis`, set to fail fast: no offline queue and no retries per command, so a request
 * never waits on an absent Redis longer than `storeTimeout`; ioredis keeps reconnecting in the
 * background, so Redis coming back needs no restart.
 *
 * A first start waits `storeTimeout` for Redis and fails with a message naming it; a worker
 * restarted in a running cluster starts anyway, and its readiness check reports Redis until it
 * answers (a crash during an outage must not cost the slot).
 */
async function connectRedis (fastify: FastifyInstance, options: ResolvedSharedState): Promise<Redis> {
  if (fastify.hasDecorator('redis')) return (fastify as unknown as { redis: Redis }).redis
  const { storeTimeout } = options
  const failFast = {
    connectTimeout: storeTimeout,
    commandTimeout: storeTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    lazyConnect: true
  }
  const { Redis } = require('ioredis') as typeof import('ioredis')
  const config = options.redis as RedisConfig
  const client = typeof config === 'string' ? new Redis(config, failFast) : new Redis({ ...failFast, ...config })
  // Failures reach requests (503 or fail-open) and readiness; the client's own events would only
  // repeat them. The last one says why a first connection failed ("ECONNREFUSED", not "Connection is closed").
  let lastError: Error | undefined
  client.on('error', (error: Error) => { lastError = error })
  fastify.decorate('redis', client as never)
  fastify.addHook('onClose', async () => { client.disconnect() })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('no answer')), storeTimeout) })
    ])
  } catch (error) {
    const address = typeof config === 'string' ? redactUrl(config) : `${config.host ?? '127.0.0.1'}:${config.port ?? 6379}`
    const failure = new FCK_REDIS_UNAVAILABLE(address, options.redisSource, storeTimeout, (lastError ?? error as Error).message)
    if (!options.startWithoutRedis) {
      client.disconnect()
      throw failure
    }
    fastify.log.warn(`clusterPlugin: ${failure.message}; starting without it, not ready until it answers`)
  } finally {
    clearTimeout(timer)
  }
  return client
}

/** A URL with its password hidden. */
function redactUrl (url: string): string {
  const parsed = new URL(url)
  if (parsed.password !== '') parsed.password = '***'
  return parsed.toString()
}

function redisIncr (redis: Redis): Incr {
  // The official Redis store's atomic Lua script, one instance per continueExceeding setting.
  const RedisStore = require('@fastify/rate-limit/store/RedisStore.js')
  const stores = [false, true].map((continueExceeding) => new RedisStore(continueExceeding, false, redis, ''))
  return async (key, timeWindow, max, continueExceeding) => await new Promise((resolve, reject) => {
    stores[Number(continueExceeding)].incr(key, (error: Error | null, result: { current: number, ttl: number }) => error === null ? resolve(result) : reject(error), timeWindow, max)
  })
}

function primaryIncr (state: PrimaryState): Incr {
  return async (key, timeWindow, max, continueExceeding) =>
    await state.request({ op: 'incr', key, timeWindow, max, continueExceeding }) as { current: number, ttl: number }
}

interface RateLimitParams { continueExceeding?: boolean, routeInfo?: { method?: string, url?: string } }

/**
 * A @fastify/rate-limit store (it constructs the class itself) over a shared counter. Keys are
 * namespaced, and per route for routes with their own limit, as the official stores do. A failure
 * is reported and passed on as FCK_STORE_UNAVAILABLE: with fail-open (skipOnError) the request
 * goes through, with fail-closed it is answered 503.
 */
function counterStore (backend: SharedStateBackend, incr: Incr, onError: (error: Error) => void): new (params: RateLimitParams) => object {
  return class CounterStore {
    constructor (private readonly params: RateLimitParams, private readonly prefix = 'fck:rl:') {}

    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number, max: number): void {
      incr(this.prefix + key, timeWindow, max, this.params.continueExceeding === true).then(
        (result) => callback(null, result),
        (error: Error) => {
          onError(error)
          callback(storeUnavailable(`${backend} rate-limit`, error))
        })
    }

    child (params: RateLimitParams): CounterStore {
      return new CounterStore(params, `${this.prefix}${params.routeInfo?.method ?? ''}${params.routeInfo?.url ?? ''}-`)
    }
  }
}
