import { storeUnavailable } from '../common/errors.js'
import type { StateRequest } from '../common/protocol.js'

type Callback<T = void> = (error?: Error | null, value?: T) => void

/** A session as @fastify/session hands it to a store: whatever it holds, and its cookie. */
interface StoredSession {
  cookie?: { expires?: Date | string | null, originalMaxAge?: number | null }
}

/** One day: the lifetime of a session whose cookie has no expiry (a browser-session cookie). */
const DEFAULT_TTL = 86_400_000

/** Sessions one client address keeps; the default of `primaryStore.maxSessionsPerClient` too. */
export const DEFAULT_PER_CLIENT = 100

/**
 * The @fastify/session store interface (callbacks) over a key-value store that can fail:
 * a failure becomes FCK_STORE_UNAVAILABLE (503) for the request, never a crash or a hang.
 * A session lives as long as its cookie says (`expires`, else `maxAge`), else `ttl`.
 */
abstract class KeyValueSessionStore {
  readonly #onError: ((error: Error) => void) | undefined

  constructor (private readonly name: string, protected readonly prefix: string, private readonly ttl: number, onError?: (error: Error) => void) {
    this.#onError = onError
  }

  protected abstract read (key: string): Promise<unknown>
  protected abstract write (key: string, session: unknown, ttl: number): Promise<void>
  protected abstract remove (key: string): Promise<void>

  get (sessionId: string, callback: Callback<unknown>): void {
    this.read(this.prefix + sessionId).then((session) => callback(null, session ?? null), (error: Error) => callback(this.#unavailable(error)))
  }

  set (sessionId: string, session: StoredSession, callback: Callback): void {
    const expires = session.cookie?.expires
    const ttl = expires != null ? new Date(expires).getTime() - Date.now() : (session.cookie?.originalMaxAge ?? this.ttl)
    const done = ttl > 0 ? this.write(this.prefix + sessionId, session, ttl) : this.remove(this.prefix + sessionId)
    done.then(() => callback(null), (error: Error) => callback(this.#unavailable(error)))
  }

  destroy (sessionId: string, callback: Callback): void {
    this.remove(this.prefix + sessionId).then(() => callback(null), (error: Error) => callback(this.#unavailable(error)))
  }

  #unavailable (error: Error): Error {
    this.#onError?.(error)
    return storeUnavailable(this.name, error)
  }
}

export interface SessionStoreOptions {
  /**
   * Prefix of every key, so several apps can share one Redis.
   * @default 'fck:sess:'
   */
  prefix?: string
  /**
   * Milliseconds a session lives when its cookie sets no expiry.
   * @default 86400000 (one day)
   */
  ttl?: number
  /** Hears every failure before the request gets its 503 (clusterPlugin logs and counts them). */
  onError?: (error: Error) => void
  /**
   * Sessions one client address keeps (RedisSessionStore; the primary's store has its own,
   * `primaryStore.maxSessionsPerClient`): a new session past it removes that client's oldest.
   * Needs a client with `eval` on one Redis (not a Redis Cluster: the keys of one client's
   * sessions live in other slots). Environment: `CLUSTER_MAX_SESSIONS_PER_CLIENT`.
   * @default 100
   */
  maxSessionsPerClient?: number
}

/** What RedisSessionStore needs of a Redis client (an ioredis `Redis` or `Cluster`); `eval` for the per-client bound. */
export interface RedisLike {
  get: (key: string) => Promise<string | null>
  set: (key: string, value: string, mode: 'PX', ttl: number) => Promise<unknown>
  del: (key: string) => Promise<unknown>
  eval?: (script: string, keys: number, ...args: Array<string | number>) => Promise<unknown>
  isCluster?: boolean
}

// A session's write and its client's bound in one round trip, as the plain SET was. A new
// session joins its client's index (a sorted set scored by expiry); past the bound, the sessions
// expiring first (the oldest) are deleted. A rewritten session stays in its creator's index.
// KEYS: the session, the client's index; ARGV: JSON, ttl, now, the bound.
const WRITE = `
local new = redis.call('EXISTS', KEYS[1]) == 0
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if not new then return 0 end
local now = tonumber(ARGV[3])
local expires = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], expires, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over <= 0 then return 0 end
local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
redis.call('DEL', unpack(oldest))
redis.call('ZREM', KEYS[2], unpack(oldest))
return over
`

/** Sessions in Redis: one JSON string per session, expiring with it (`PX`), bounded per client where the client can `eval`. */
export class RedisSessionStore extends KeyValueSessionStore {
  readonly #perClient: number | undefined

  constructor (private readonly redis: RedisLike, options: SessionStoreOptions = {}) {
    super('redis session', options.prefix ?? 'fck:sess:', options.ttl ?? DEFAULT_TTL, options.onError)
    this.#perClient = redis.eval === undefined || redis.isCluster === true ? undefined : options.maxSessionsPerClient ?? DEFAULT_PER_CLIENT
  }

  protected async read (key: string): Promise<unknown> {
    const text = await this.redis.get(key)
    return text === null ? null : JSON.parse(text)
  }

  protected async write (key: string, session: unknown, ttl: number): Promise<void> {
    const data = JSON.stringify(session)
    if (this.#perClient === undefined) await this.redis.set(key, data, 'PX', Math.ceil(ttl))
    else await this.redis.eval?.(WRITE, 2, key, `${this.prefix}client:${clientOf(session as object)}`, data, Math.ceil(ttl), Date.now(), this.#perClient)
  }

  protected async remove (key: string): Promise<void> {
    await this.redis.del(key)
  }
}

let requestSymbol: symbol | undefined

/**
 * The address of the request saving a session, as Fastify sees it (`request.ip`, so `trustProxy`
 * gives the real client behind a balancer). The store interface passes no request, but
 * @fastify/session keeps it on the session under a symbol described `request` (a symbol's
 * properties never reach the JSON); the primary counts sessions per client with it.
 */
function clientOf (session: object): string {
  requestSymbol ??= Object.getOwnPropertySymbols(session).find((symbol) => symbol.description === 'request')
  const ip = requestSymbol === undefined ? undefined : (session as Record<symbol, { ip?: unknown } | undefined>)[requestSymbol]?.ip
  return typeof ip === 'string' ? ip : 'unknown'
}

/** Sessions held by the bootCluster primary, reached over IPC; see primary-store.ts. */
export class PrimarySessionStore extends KeyValueSessionStore {
  constructor (private readonly ask: (request: StateRequest) => Promise<unknown>, options: SessionStoreOptions = {}) {
    super('primary session', options.prefix ?? 'fck:sess:', options.ttl ?? DEFAULT_TTL, options.onError)
  }

  protected async read (key: string): Promise<unknown> {
    const data = await this.ask({ op: 'session:get', key })
    return typeof data === 'string' ? JSON.parse(data) : null
  }

  protected async write (key: string, session: unknown, ttl: number): Promise<void> {
    // As JSON, as in Redis: both backends hand back the same plain object, and the primary counts its bytes.
    const empty = Object.keys(session as object).every((name) => name === 'cookie')
    await this.ask({ op: 'session:set', key, data: JSON.stringify(session), ttl, empty, client: clientOf(session as object) })
  }

  protected async remove (key: string): Promise<void> {
    await this.ask({ op: 'session:destroy', key })
  }
}
