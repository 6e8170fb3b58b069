import t from 'tap'
import { SharedState } from '../../lib/shared-state/primary-store.js'

const limits = { maxSessions: 4, maxSessionBytes: 1000, maxCounters: 3 }
const incr = (key: string, now: number, extra: { max?: number, continueExceeding?: boolean, exponentialBackoff?: boolean } = {}): unknown =>
  ({ op: 'incr', key, timeWindow: 1000, max: extra.max ?? 10, continueExceeding: extra.continueExceeding ?? false, exponentialBackoff: extra.exponentialBackoff ?? false, now })

t.test('counters: a fixed window from the first hit, then a fresh one; read does not count', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  const hit = (now: number, extra = {}): unknown => { const { now: at, ...request } = incr('a', now, extra) as any; return store.handle(request, at) }
  t.same(hit(0), { current: 1, ttl: 1000 })
  t.same(hit(400), { current: 2, ttl: 600 })
  t.same(store.handle({ op: 'read', key: 'a' }, 500), { current: 2, ttl: 500 })
  t.same(hit(1000), { current: 1, ttl: 1000 }, 'the window ended: a new one')
  t.same(store.handle({ op: 'read', key: 'missing' }, 0), { current: 0, ttl: 0 })
})

t.test('counters: continueExceeding restarts the window, exponentialBackoff doubles it per hit over', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  const hit = (key: string, now: number, extra: object): unknown => { const { now: at, ...request } = incr(key, now, { max: 1, ...extra }) as any; return store.handle(request, at) }
  t.same([hit('c', 0, { continueExceeding: true }), hit('c', 500, { continueExceeding: true })], [{ current: 1, ttl: 1000 }, { current: 2, ttl: 1000 }])
  t.same([0, 1, 2, 3].map((i) => (hit('e', i, { exponentialBackoff: true }) as { ttl: number }).ttl), [1000, 1000, 2000, 4000])
})

t.test('counters are capped at maxCounters, oldest out first', async (t) => {
  const store = new SharedState(limits)
  t.teardown(() => store.stop())
  for (const key of ['a', 'b', 'c', 'd']) { const { now, ...request } = incr(key, 0) as any; store.handle(request, now) }
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
