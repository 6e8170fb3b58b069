import t from 'tap'
import type { WindowMode } from '../../lib/common/protocol.js'
import { SharedState } from '../../lib/shared-state/primary-store.js'
import { tallied, type Tally } from '../../lib/shared-state/rate-limit-store.js'

const limits = { maxSessions: 4, maxSessionsPerClient: 100, maxSessionBytes: 1000, maxCounters: 3 }

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
  t.match(store.size(), { counters: 3, evictions: { counter: { store_full: 1 } } })
  t.same(store.handle({ op: 'read', key: 'a' }, 0), { current: 0, ttl: 0 }, 'the oldest went')
})

t.test('sessions expire with their TTL; empty ones are evicted before those holding data, by count and by bytes', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  const set = (key: string, data: string, empty: boolean, ttl = 1000): unknown => store.handle({ op: 'session:set', key, data, ttl, empty, client: 'c' }, 0)
  set('ada', '{"person":"ada"}', false)
  set('grace', '{"person":"grace"}', false, 100)
  for (let i = 0; i < 10; i++) set(`anon${i}`, '{"cookie":{}}', true)
  t.match(store.size(), { sessions: 2, emptySessions: 2, evictions: { empty_session: { store_full: 8 }, session: { store_full: 0 } } }, 'anonymous sessions evict only each other')
  t.equal(store.handle({ op: 'session:get', key: 'ada' }, 50), '{"person":"ada"}')
  t.equal(store.handle({ op: 'session:get', key: 'grace' }, 100), null, 'expired with its TTL')
  set('big', 'x'.repeat(960), false)
  t.match(store.size(), { emptySessions: 0 }, 'bytes over the limit: the empty ones go first')
  t.ok(store.size().sessionBytes <= limits.maxSessionBytes)
  set('bigger', 'y'.repeat(900), false)
  t.match(store.size(), { evictions: { session: { store_full: 3 } } }, 'with no empty session left, the least recently used holding data go')
  t.equal(store.handle({ op: 'session:get', key: 'bigger' }, 0), 'y'.repeat(900))
  store.handle({ op: 'session:destroy', key: 'bigger' }, 0)
  t.match(store.size(), { sessions: 0, sessionBytes: 0 })
})

t.test('a client over its own limit loses its own least recently used sessions, never another client\'s', async (t) => {
  const store = new SharedState({ ...limits, maxSessions: 10, maxSessionsPerClient: 3 })
  t.teardown(() => store.stop())
  const set = (key: string, client: string, now = 0): unknown => store.handle({ op: 'session:set', key, data: `{"k":"${key}"}`, ttl: 60_000, empty: false, client }, now)
  const get = (key: string, now = 0): unknown => store.handle({ op: 'session:get', key }, now)
  set('ada', 'user')
  set('f1', 'flood')
  set('f2', 'flood')
  set('f3', 'flood')
  get('f1')
  set('f4', 'flood')
  t.equal(get('f2'), null, 'the flood\'s least recently used went (f1 was read after f2 was written)')
  t.not(get('f1'), null)
  for (let i = 5; i < 1000; i++) set(`f${i}`, 'flood')
  t.not(get('ada'), null, 'another client\'s session stays, however many the flood creates')
  t.match(store.size(), { sessions: 4, clients: 2, evictions: { session: { client_limit: 996, store_full: 0 } } })
  set('ada', 'flood')
  set('ada2', 'user')
  t.match(store.size(), { sessions: 5 }, 'a rewritten session stays its creator\'s: it does not count against the flood')
  store.handle({ op: 'session:destroy', key: 'ada' }, 0)
  store.handle({ op: 'session:destroy', key: 'ada2' }, 0)
  t.match(store.size(), { clients: 1 }, 'a client with no session left is forgotten')
})

t.test('a full store drops the least recently used session, so people who keep using the site stay signed in', async (t) => {
  const store = new SharedState({ ...limits, maxSessions: 3 })
  t.teardown(() => store.stop())
  const set = (key: string, client: string): unknown => store.handle({ op: 'session:set', key, data: '{"p":1}', ttl: 60_000, empty: false, client }, 0)
  const get = (key: string): unknown => store.handle({ op: 'session:get', key }, 0)
  set('active', 'a')
  set('idle', 'b')
  set('other', 'c')
  get('active')
  set('new', 'd')
  t.equal(get('idle'), null, 'the least recently used went')
  t.not(get('active'), null, 'the first created stays: it was used')
  store.handle({ op: 'session:set', key: 'anon', data: '{"cookie":{}}', ttl: 60_000, empty: true, client: 'e' }, 0)
  t.equal(get('anon'), null, 'an empty session goes before any holding data, however recent')
  t.not(get('other'), null)
  t.match(store.size(), { sessions: 3, emptySessions: 0, evictions: { session: { store_full: 1 }, empty_session: { store_full: 1 } } })
})
