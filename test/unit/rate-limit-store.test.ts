import t from 'tap'
import type { WindowMode } from '../../lib/common/protocol.js'
import { SharedState } from '../../lib/shared-state/primary-store.js'
import { tallied, type Tally } from '../../lib/shared-state/rate-limit-store.js'

type Hit = { key: string, timeWindow: number, max: number, mode: WindowMode }

/** @fastify/rate-limit's Redis store, hit by hit (its Lua script, in JS), the clock stopped at `now` ms. */
function oneByOne (keys: Map<string, { current: number, resetAt: number }>, hits: Hit[], now: number): Array<{ current: number, ttl: number }> {
  return hits.map(({ key, timeWindow, max, mode }) => {
    const entry = keys.get(key) ?? { current: 0, resetAt: now }
    keys.set(key, entry)
    entry.current++
    if (entry.current === 1 || (mode === 'continue' && entry.current > max)) entry.resetAt = now + timeWindow
    else if (mode === 'backoff' && entry.current > max) entry.resetAt = now + Math.min(timeWindow * 2 ** (entry.current - max - 1), Number.MAX_SAFE_INTEGER)
    return { current: entry.current, ttl: entry.resetAt - now }
  })
}

/** A counter over the primary's store at one instant, as the primary backend uses it. */
function primaryIncr (store: SharedState, now: number): ReturnType<typeof tallied> {
  return tallied(async (batch) => batch.map((hits) => store.handle({ op: 'incr', ...hits }, now) as Tally))
}

t.test('a batch counted as one gives every hit what counting it alone gives, in arrival order', async (t) => {
  const modes: WindowMode[] = ['fixed', 'continue', 'backoff']
  let seed = 7
  const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
  for (let round = 0; round < 50; round++) {
    // A few keys, each with its own settings (as a route's store has), hit in a random order.
    const settings = Array.from({ length: 1 + random(4) }, (_, i) => ({ key: `k${i}`, timeWindow: 1000 * (1 + random(3)), max: random(6), mode: modes[random(3)] as WindowMode }))
    const hits = Array.from({ length: 1 + random(40) }, () => settings[random(settings.length)] as Hit)
    const store = new SharedState({ maxSessions: 10, maxSessionsPerClient: 10, maxSessionBytes: 1000, maxCounters: 100 })
    // Two batches, the second 400 ms later, starting from what the first left.
    const cut = random(hits.length)
    const batch = async (part: Hit[], now: number): Promise<unknown[]> => {
      const incr = primaryIncr(store, now)
      return await Promise.all(part.map(async (hit) => await incr(hit.key, hit.timeWindow, hit.max, hit.mode)))
    }
    const counted = [...await batch(hits.slice(0, cut), 0), ...await batch(hits.slice(cut), 400)]
    const keys = new Map()
    t.same(counted, [...oneByOne(keys, hits.slice(0, cut), 0), ...oneByOne(keys, hits.slice(cut), 400)], `round ${round}: ${hits.length} hits on ${settings.length} keys`)
    store.stop()
  }
})

t.test('a batch reaches the store as one call with the hits on a key summed', async (t) => {
  const calls: unknown[] = []
  const incr = tallied(async (batch) => { calls.push(batch); return batch.map((hits) => [hits.hits, 1000]) })
  const counts = await Promise.all([incr('a', 1000, 5, 'fixed'), incr('b', 1000, 5, 'fixed'), incr('a', 1000, 5, 'fixed')])
  t.same(calls, [[{ key: 'a', hits: 2, timeWindow: 1000, max: 5, mode: 'fixed' }, { key: 'b', hits: 1, timeWindow: 1000, max: 5, mode: 'fixed' }]])
  t.same(counts.map((count) => count.current), [1, 1, 2])
})

t.test('a failed store call fails every hit of its batch, and the next batch is sent anew', async (t) => {
  let fail = true
  const incr = tallied(async (batch) => { if (fail) throw new Error('store away'); return batch.map((hits) => [hits.hits, 1000]) })
  const results = await Promise.allSettled([incr('a', 1000, 5, 'fixed'), incr('b', 1000, 5, 'fixed')])
  t.same(results.map((result) => result.status), ['rejected', 'rejected'])
  fail = false
  t.same(await incr('a', 1000, 5, 'fixed'), { current: 1, ttl: 1000 })
})
