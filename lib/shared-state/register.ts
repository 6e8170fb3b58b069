import { createRequire } from 'node:module'
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { batched } from '../common/batch.js'
import { FCK_INVALID_OPTION, FCK_MISSING_PEER, FCK_REDIS_UNAVAILABLE } from '../common/errors.js'
import type { Checks } from '../worker/health.js'
import type { Identity } from '../common/identity.js'
import type { StateRequest } from '../common/protocol.js'
import type { WorkerChannel } from '../worker/channel.js'
import type { RedisConfig, ResolvedSharedState, SharedStateBackend } from './options.js'
import { counterStore, primaryCounter, redisCounter } from './rate-limit-store.js'
import { PrimarySessionStore, RedisSessionStore } from './session-stores.js'

const nodeRequire = createRequire(import.meta.url)

/** An optional peer dependency, and what needs it (`the session option`, `REDIS_URL`). */
type Need = readonly [name: string, neededBy: string]

/**
 * The optional peer dependencies the options use, loaded: an app without sessions, rate limits
 * or Redis installs none of them. Every missing one is named in one error, with what needs it and
 * the install line, so a user installs them all at once rather than one per failed start.
 */
function loadPeers (needs: readonly Need[]): Map<string, unknown> {
  const loaded = new Map<string, unknown>()
  const missing: Need[] = []
  for (const need of needs) {
    const [name] = need
    try {
      loaded.set(name, nodeRequire(name))
    } catch (error) {
      const { code, message } = error as { code?: string, message?: string }
      if (code !== 'MODULE_NOT_FOUND' || message?.includes(`'${name}'`) !== true) throw error
      missing.push(need)
    }
  }
  if (missing.length === 0) return loaded
  const names = [...new Set(missing.map(([name]) => name))]
  const neededBy = [...new Set(missing.map(([, by]) => by))]
  throw new FCK_MISSING_PEER(`The ${and(names)} package${names.length > 1 ? 's' : ''}`, names.length > 1 ? 'are' : 'is', and(neededBy), names.join(' '))
}

function and (items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1) as string}` : items[0] ?? ''
}

/** `redis` when Redis is configured, else `primary` under bootCluster, else `memory`; or what `sharedState` asks, if it can be had. */
export function chooseBackend ({ backend, redis }: ResolvedSharedState, identity: Identity): SharedStateBackend {
  if (backend === 'redis' && redis === undefined) throw new FCK_INVALID_OPTION('sharedState', '"redis"', 'a Redis: set the redis option, REDIS_URL or REDIS_HOST')
  if (backend === 'primary' && identity.manager !== 'bootCluster') throw new FCK_INVALID_OPTION('sharedState', '"primary"', 'a process forked by bootCluster')
  if (backend !== undefined) return backend
  if (redis !== undefined) return 'redis'
  return identity.manager === 'bootCluster' ? 'primary' : 'memory'
}

/**
 * Registers what the options ask for: one Redis connection (the app's own `fastify.redis` if it
 * has one), @fastify/rate-limit and @fastify/session (with @fastify/cookie), each with the
 * backend's store. `onStoreError` hears every store failure (the plugin logs and counts it).
 */
export async function registerSharedState (
  fastify: FastifyInstance,
  options: ResolvedSharedState,
  backend: SharedStateBackend,
  deps: { identity: Identity, checks: Checks, channel: WorkerChannel, probes: ReadonlySet<string>, onStoreError: (store: string, error: Error) => void }
): Promise<void> {
  const { rateLimit, session } = options
  if (backend === 'memory' && deps.identity.manager === 'pm2' && (rateLimit !== undefined || session !== undefined)) {
    fastify.log.warn('clusterPlugin: no Redis configured under PM2: rate limits and sessions are per worker (set REDIS_URL to share them)')
  }
  const needsRedis = backend === 'redis' && !fastify.hasDecorator('redis')
  const peers = loadPeers([
    ...(needsRedis ? [['ioredis', options.redisSource] as const] : []),
    ...(rateLimit === undefined ? [] : [['@fastify/rate-limit', 'the rateLimit option'] as const]),
    ...(session === undefined ? [] : [['@fastify/session', 'the session option'] as const]),
    ...(session === undefined || fastify.hasDecorator('parseCookie') ? [] : [['@fastify/cookie', 'the session option'] as const])
  ])
  let redis: Redis | undefined
  let primary: ((requests: StateRequest[]) => Promise<unknown[]>) | undefined
  if (backend === 'redis') {
    redis = needsRedis ? await connectRedis(fastify, options, peers.get('ioredis') as typeof import('ioredis')) : (fastify as unknown as { redis: Redis }).redis
    const client = redis
    // Answers at once while Redis is away (no offline queue), and turns ready again when it is back.
    deps.checks.add('redis', async () => (await client.ping()) === 'PONG', { timeout: options.storeTimeout })
  } else if (backend === 'primary') {
    primary = async (requests) => await deps.channel.request(requests, options.storeTimeout)
  }

  if (rateLimit !== undefined) {
    const counter = redis !== undefined ? redisCounter(redis) : primary !== undefined ? primaryCounter(primary) : undefined
    const store = counter === undefined ? undefined : counterStore(backend, counter, (error) => deps.onStoreError('rate-limit', error))
    await registerOfficial(fastify, 'rateLimit', peers.get('@fastify/rate-limit'), '@fastify/rate-limit', {
      ...rateLimit,
      ...(store === undefined ? {} : { store }),
      skipOnError: options.onStoreError === 'fail-open'
    })
  }
  if (session !== undefined) {
    const onError = (error: Error): void => deps.onStoreError('session', error)
    const store = redis !== undefined
      ? new RedisSessionStore(redis, { onError, maxSessionsPerClient: options.sessionsPerClient })
      : primary !== undefined ? new PrimarySessionStore(batched(primary), { onError }) : undefined
    if (peers.has('@fastify/cookie')) await registerOfficial(fastify, 'session', peers.get('@fastify/cookie'), '@fastify/cookie', {})
    // A session is stored (and its cookie set) only once a request puts something in it, unless
    // the app says otherwise: anonymous traffic then costs the store nothing and cannot evict anyone.
    await registerOfficial(fastify, 'session', peers.get('@fastify/session'), '@fastify/session', {
      saveUninitialized: false,
      ...session,
      ...(store === undefined || session.store !== undefined ? {} : { store })
    }, deps.probes)
  }
}

/**
 * Registers an official plugin; what it rejects becomes an error naming our option. With `skip`,
 * the hooks the plugin adds do not run for those route paths (the probes): Fastify gives a hook
 * added to a context to every route in it and its children, so no registration order or child
 * context keeps @fastify/session's store away from a probe.
 */
async function registerOfficial (
  fastify: FastifyInstance, option: string, loaded: unknown, name: string, settings: object, skip?: ReadonlySet<string>
): Promise<void> {
  const plugin = loaded as FastifyPluginCallback
  try {
    await fastify.register(skip === undefined ? plugin : skippingRoutes(plugin, name, skip), settings)
  } catch (error) {
    // The secret stays out of the message, and so does the store (it holds a Redis client).
    const shown = JSON.stringify(settings, (key, value) => key === 'secret' ? '<hidden>' : key === 'store' ? '<store>' : value)
    throw new FCK_INVALID_OPTION(option, shown, `options ${name} accepts (${(error as Error).message})`)
  }
}

/**
 * A new Redis client (the app's own, when it decorated `fastify.redis` with @fastify/redis, is
 * used instead, without this), decorated as `fastify.redis`, set to fail fast: no offline queue and no retries per command, so a request
 * never waits on an absent Redis longer than `storeTimeout`; ioredis keeps reconnecting in the
 * background, so Redis coming back needs no restart.
 *
 * A first start waits `storeTimeout` for Redis and fails with a message naming it; a worker
 * restarted in a running cluster starts anyway, and its readiness check reports Redis until it
 * answers (a crash during an outage must not cost the slot).
 */
async function connectRedis (fastify: FastifyInstance, options: ResolvedSharedState, { Redis }: typeof import('ioredis')): Promise<Redis> {
  const { storeTimeout } = options
  const failFast = {
    connectTimeout: storeTimeout,
    commandTimeout: storeTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    lazyConnect: true
  }
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

type Hook = (this: unknown, request: FastifyRequest, ...rest: any[]) => unknown

/**
 * The plugin, registered under its own name, run on a view of the instance whose `addHook` makes
 * every hook pass straight through for requests to the `skip` paths.
 */
function skippingRoutes (plugin: FastifyPluginCallback, name: string, skip: ReadonlySet<string>): FastifyPluginCallback {
  const skipped = (request: FastifyRequest): boolean => skip.has(request.routeOptions.url ?? '')
  const wrap = (hook: Hook): Hook => {
    // Fastify tells an async hook from a callback one by its kind and arity: keep both.
    if (hook.constructor.name === 'AsyncFunction') {
      return async function (this: unknown, request, ...rest) { return skipped(request) ? rest[1] : await hook.call(this, request, ...rest) }
    }
    // Where `done` is after the request: (request, reply, done), or onSend's (request, reply, payload, done).
    const done = hook.length - 2
    return Object.defineProperty(function (this: unknown, request: FastifyRequest, ...rest: any[]) {
      // onSend passes its payload on; every other hook just continues.
      if (skipped(request)) return done === 2 ? rest[2](null, rest[1]) : rest[done]()
      return hook.call(this, request, ...rest)
    }, 'length', { value: hook.length })
  }
  return fp((instance, options, next) => {
    const view = new Proxy(instance, {
      get: (target, property) => property === 'addHook'
        ? (hookName: string, hook: Hook) => target.addHook(hookName as 'onRequest', wrap(hook) as never)
        : Reflect.get(target, property, target)
    })
    const result = plugin(view, options, next) as unknown
    if (result instanceof Promise) result.then(() => next(), next)
  }, { fastify: '5.x', name })
}
