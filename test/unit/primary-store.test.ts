import t from 'tap'
import type { WindowMode } from '../../lib/common/protocol.js'
import { SharedState } from '../../lib/shared-state/primary-store.js'
import { tallied, type Tally } from '../../lib/shared-state/rate-limit-store.js'

const limits = { maxSessions: 4, maxSessionBytes: 1000, maxCounters: 3 }

/** One hit on `key` at `now`, as the primary backend counts it (window 1000 ms, max 10 unless told). */
async function hit (store: SharedState, key: string, now: number, { max = 10, mode = 'fixed' }: { max?: number, mode?: WindowMode } = {}): Promise<unknown> {
  const incr = tallied(async (batch) => batch.map((hits) => store.handle({ op: 'incr', ...hits }, now) as Tally))
  return await incr(key, 1000, max, mode)
}

t.test('counters: a fixed window from the first hit, then a fresh one; read does not count', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  t.same(await hit(store, 'a', 0), { current: 1, ttl: 1000 })
  t.same(await hit(store, 'a', 400), { current: 2, ttl: 600 })
  t.same(store.handle({ op: 'read', key: 'a' }, 500), { current: 2, ttl: 500 })
  t.same(await hit(store, 'a', 1000), { current: 1, ttl: 1000 }, 'the window ended: a new one')
  t.same(store.handle({ op: 'read', key: 'missing' }, 0), { current: 0, ttl: 0 })
})

t.test('counters: continueExceeding restarts the window, exponentialBackoff doubles it per hit over', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  t.same([await hit(store, 'c', 0, { max: 1, mode: 'continue' }), await hit(store, 'c', 500, { max: 1, mode: 'continue' })], [{ current: 1, ttl: 1000 }, { current: 2, ttl: 1000 }])
  const ttls = []
  for (const now of [0, 1, 2, 3]) ttls.push((await hit(store, 'e', now, { max: 1, mode: 'backoff' }) as { ttl: number }).ttl)
  t.same(ttls, [1000, 1000, 2000, 4000])
})

t.test('counters are capped at maxCounters, oldest out first', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  for (const key of ['a', 'b', 'c', 'd']) await hit(store, key, 0)
  t.match(store.size(), { counters: 3, evictions: { counter: 1 } })
  t.same(store.handle({ op: 'read', key: 'a' }, 0), { current: 0, ttl: 0 }, 'the oldest went')
})

t.test('sessions expire with their TTL; empty ones are evicted before those holding data, by count and by bytes', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  const set = (key: string, data: string, empty: boolean, ttl = 1000): unknown => store.handle({ op: 'session:set', key, data, ttl, empty }, 0)
  set('ada', '{"person":"ada"}', false)
  set('grace', '{"person":"grace"}', false, 100)
  for (let i = 0; i < 10; i++) set(`anon${i}`, '{"cookie":{}}', true)
  t.match(store.size(), { sessions: 2, emptySessions: 2, evictions: { empty_session: 8, session: 0 } }, 'anonymous sessions evict only each other')
  t.equal(store.handle({ op: 'session:get', key: 'ada' }, 50), '{"person":"ada"}')
  t.equal(store.handle({ op: 'session:get', key: 'grace' }, 100), null, 'expired with its TTL')
  set('big', 'x'.repeat(960), false)
  t.match(store.size(), { emptySessions: 0 }, 'bytes over the limit: the empty ones go first')
  t.ok(store.size().sessionBytes <= limits.maxSessionBytes)
  set('bigger', 'y'.repeat(900), false)
  t.match(store.size(), { evictions: { session: 3 } }, 'with no empty session left, the oldest holding data go')
  t.equal(store.handle({ op: 'session:get', key: 'bigger' }, 0), 'y'.repeat(900))
  store.handle({ op: 'session:destroy', key: 'bigger' }, 0)
  t.match(store.size(), { sessions: 0, sessionBytes: 0 })
})
