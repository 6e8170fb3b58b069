import type { StateRequest } from '../protocol.js'

/** Entries kept per kind; past it, the oldest entries go first (Map keeps insertion order). */
const MAX_ENTRIES = 100_000
const SWEEP_INTERVAL = 10_000

/**
 * The primary's shared state: rate-limit counters and sessions that every worker reaches over
 * IPC (the `primary` backend). Counters expire with their window and sessions with their TTL;
 * a sweep drops expired entries and the size is capped, so memory stays bounded.
 */
export class SharedState {
  readonly #counters = new Map<string, { current: number, resetAt: number }>()
  readonly #sessions = new Map<string, { session: unknown, expiresAt: number }>()
  readonly #sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL).unref()

  handle (request: StateRequest, now = Date.now()): unknown {
    switch (request.op) {
      case 'incr': return this.#incr(request, now)
      case 'session:get': {
        const entry = this.#sessions.get(request.key)
        if (entry === undefined || entry.expiresAt <= now) return null
        return entry.session
      }
      case 'session:set':
        this.#sessions.delete(request.key)
        this.#sessions.set(request.key, { session: request.session, expiresAt: now + request.ttl })
        trim(this.#sessions)
        return null
      case 'session:destroy':
        this.#sessions.delete(request.key)
        return null
    }
  }

  /** The same arithmetic as @fastify/rate-limit's stores: a fixed window from the first hit. */
  #incr ({ key, timeWindow, max, continueExceeding }: Extract<StateRequest, { op: 'incr' }>, now: number): { current: number, ttl: number } {
    let entry = this.#counters.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      this.#counters.delete(key)
      entry = { current: 0, resetAt: now + timeWindow }
      this.#counters.set(key, entry)
      trim(this.#counters)
    }
    entry.current++
    // continueExceeding: a client over the limit keeps its window open until it stops.
    if (continueExceeding && entry.current > max) entry.resetAt = now + timeWindow
    return { current: entry.current, ttl: entry.resetAt - now }
  }

  #sweep (now = Date.now()): void {
    for (const [key, entry] of this.#counters) if (entry.resetAt <= now) this.#counters.delete(key)
    for (const [key, entry] of this.#sessions) if (entry.expiresAt <= now) this.#sessions.delete(key)
  }

  get size (): { counters: number, sessions: number } {
    return { counters: this.#counters.size, sessions: this.#sessions.size }
  }

  stop (): void {
    clearInterval(this.#sweeper)
  }
}

function trim (map: Map<string, unknown>): void {
  for (const key of map.keys()) {
    if (map.size <= MAX_ENTRIES) return
    map.delete(key)
  }
}
