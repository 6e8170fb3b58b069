import { storeUnavailable } from '../common/errors.js'
import type { StateRequest } from '../common/protocol.js'

type Callback<T = void> = (error?: Error | null, value?: T) => void

/** A session as @fastify/session hands it to a store: whatever it holds, and its cookie. */
interface StoredSession {
  cookie?: { expires?: Date | string | null, originalMaxAge?: number | null }
}

/** One day: the lifetime of a session whose cookie has no expiry (a browser-session cookie). */
const DEFAULT_TTL = 86_400_000

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
}

/** What RedisSessionStore needs of a Redis client (an ioredis `Redis` or `Cluster`). */
export interface RedisLike {
  get: (key: string) => Promise<string | null>
  set: (key: string, value: string, mode: 'PX', ttl: number) => Promise<unknown>
  del: (key: string) => Promise<unknown>
}

/** Sessions in Redis: one JSON string per session, expiring with it (`PX`). */
export class RedisSessionStore extends KeyValueSessionStore {
  constructor (private readonly redis: RedisLike, options: SessionStoreOptions = {}) {
    super('redis session', options.prefix ?? 'fck:sess:', options.ttl ?? DEFAULT_TTL, options.onError)
  }

  protected async read (key: string): Promise<unknown> {
    const text = await this.redis.get(key)
    return text === null ? null : JSON.parse(text)
  }

  protected async write (key: string, session: unknown, ttl: number): Promise<void> {
    await this.redis.set(key, JSON.stringify(session), 'PX', Math.ceil(ttl))
  }

  protected async remove (key: string): Promise<void> {
    await this.redis.del(key)
  }
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
    await this.ask({ op: 'session:set', key, data: JSON.stringify(session), ttl, empty })
  }

  protected async remove (key: string): Promise<void> {
    await this.ask({ op: 'session:destroy', key })
  }
}
