import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { ClusterStats } from '../dist/index.js'
import { freePort } from './helpers/cluster.js'
import { spawnScript, waitForOutput } from './helpers/fixture.js'
import { get, send, sessionCookie } from './helpers/http.js'
import { startRedis } from './helpers/redis.js'

// A hostile client signs in 101,000 times while a real user is signed in: the example as
// `npm start` runs it (sessions in the primary), then the same flood spread over 20 addresses
// behind a trusted proxy with the example's sign-in limit off, so only the store's rule holds.
// The user comes from 127.0.0.2, the flood from 127.0.0.1 (or the addresses it forwards).

const USER = '127.0.0.2'

const EXAMPLE = fileURLToPath(new URL('../examples/attendance-dashboard/', import.meta.url))
const FLOOD = 101_000
const MB = 2 ** 20

async function stats (monitoring: number): Promise<ClusterStats> {
  return JSON.parse((await get(monitoring, '/cluster/stats')).body) as ClusterStats
}

async function startExample (t: Test, env: NodeJS.ProcessEnv): Promise<{ port: number, monitoring: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fck-flood-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const port = await freePort()
  const monitoring = await freePort()
  const { child, output } = spawnScript(join(EXAMPLE, 'dist/server.js'), {
    NODE_ENV: 'production', PORT: String(port), CLUSTER_MONITORING_PORT: String(monitoring), DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...env
  }, false)
  t.teardown(async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  })
  await waitForOutput(output, 'Dashboard   http://')
  return { port, monitoring }
}

async function signIn (port: number, name: string): Promise<string> {
  const body = JSON.stringify({ name })
  const response = await send(port, { method: 'POST', path: '/api/sign-in', headers: { 'content-type': 'application/json' }, body, localAddress: USER })
  if (response.status !== 200) throw new Error(`sign-in answered ${response.status}: ${response.body}`)
  return sessionCookie(response)
}

/** 101,000 sign-ins, each without a cookie (a new session each), from the given X-Forwarded-For addresses in turn. */
async function flood (port: number, forwardedFor: string[] = [], amount = FLOOD): Promise<Record<string, number>> {
  const body = JSON.stringify({ name: 'Mallory' })
  const base = { method: 'POST' as const, path: '/api/sign-in', body }
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 20,
    amount,
    headers: { 'content-type': 'application/json' },
    requests: forwardedFor.length === 0
      ? [base]
      : forwardedFor.map((address) => ({ ...base, headers: { 'content-type': 'application/json', 'x-forwarded-for': address } }))
  })
  return { sent: result.requests.total, ok: result['2xx'], non2xx: result.non2xx, errors: result.errors, limited: result.statusCodeStats?.['429']?.count ?? 0 }
}

/**
 * The flood from 20 forwarded addresses, with the limit off, while the user keeps using the site
 * (a request every second): every sign-in succeeds and the user is signed in at every visit.
 */
async function floodOver20While (t: Test, port: number, cookie: string): Promise<void> {
  const addresses = Array.from({ length: 20 }, (_, i) => `203.0.113.${i + 1}`)
  const state = { flooding: true }
  const seen: unknown[] = []
  const visits = (async () => {
    while (state.flooding) {
      seen.push(JSON.parse((await send(port, { path: '/api/me', headers: { cookie }, localAddress: USER })).body).person)
      await sleep(1000)
    }
  })()
  const result = await flood(port, addresses)
  state.flooding = false
  await visits
  t.equal(result.errors, 0, 'no connection failed')
  t.equal(result.ok, FLOOD, 'every sign-in of the flood succeeded (no limit)')
  t.ok(seen.length > 0 && seen.every((person) => person === 'Ada Lovelace'), `the user was signed in at every one of ${seen.length} visits during the flood`)
}

async function stillSignedIn (t: Test, port: number, cookie: string): Promise<void> {
  const me = await send(port, { path: '/api/me', headers: { cookie }, localAddress: USER })
  t.match(JSON.parse(me.body), { person: 'Ada Lovelace' }, 'the user is still signed in')
  const checkIn = await send(port, { method: 'POST', path: '/api/check-in', headers: { cookie }, localAddress: USER })
  t.equal(checkIn.status, 200, `and can check in (${checkIn.body})`)
}

t.test('one address signs in 101,000 times: the example\'s sign-in limit answers 429, the user stays signed in, the primary stays small', async (t) => {
  const { port, monitoring } = await startExample(t, {})
  const cookie = await signIn(port, 'Ada Lovelace')
  // The baseline is a primary that has served traffic: V8 sizes its young generation to the
  // allocation rate of the first busy seconds (up to 32 MiB, released only slowly), which a fresh
  // process would count as growth. The flood's first 10,000 sign-ins do that.
  await flood(port, [], 10_000)
  const before = (await stats(monitoring)).primary.memory.rss
  const result = await flood(port)
  t.equal(result.errors, 0, 'no connection failed')
  t.equal(result.limited, FLOOD, `the flood got 429 (${result.limited} of ${result.sent}; ${result.ok} signed in)`)
  await stillSignedIn(t, port, cookie)
  const after = await stats(monitoring)
  const grew = (after.primary.memory.rss - before) / MB
  t.comment(`primary RSS ${(before / MB).toFixed(1)} -> ${(after.primary.memory.rss / MB).toFixed(1)} MB; store ${JSON.stringify(after.store)}`)
  t.ok(grew < 20, `the primary's RSS grew by ${grew.toFixed(1)} MB (< 20)`)
  t.match(after.store, { sessions: 21, clients: 2, evictions: { clientLimit: 0, storeFull: 0 } }, 'the user\'s session and the 20 the limit let the flood make')
})

t.test('20 addresses behind a trusted proxy, sign-in limit off: each loses only its own sessions; the user who keeps using the site stays signed in', async (t) => {
  const { port, monitoring } = await startExample(t, { TRUST_PROXY: '127.0.0.1', SIGNIN_RATE_LIMIT: '0' })
  const cookie = await signIn(port, 'Ada Lovelace')
  const before = (await stats(monitoring)).primary.memory.rss
  await floodOver20While(t, port, cookie)
  await stillSignedIn(t, port, cookie)
  const after = await stats(monitoring)
  t.comment(`primary RSS ${(before / MB).toFixed(1)} -> ${(after.primary.memory.rss / MB).toFixed(1)} MB; store ${JSON.stringify(after.store)}`)
  t.match(after.store, { sessions: 20 * 100 + 1, clients: 21, evictions: { clientLimit: FLOOD - 20 * 100, storeFull: 0 } },
    'each flooding address keeps its last 100 sessions; the rest were its own, evicted')
  const metrics = (await get(monitoring, '/metrics')).body
  t.match(metrics, new RegExp(`cluster_primary_store_evictions_total\\{kind="session",reason="client_limit"\\} ${FLOOD - 2000}\\n`), 'evictions by reason in /metrics')
})

t.test('with Redis: the same bound per client, applied in the script that writes the session', async (t) => {
  const server = await startRedis(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
  const { port } = await startExample(t, { REDIS_URL: server.url, TRUST_PROXY: '127.0.0.1', SIGNIN_RATE_LIMIT: '0' })
  const cookie = await signIn(port, 'Ada Lovelace')
  const before = await usedMemory()
  await floodOver20While(t, port, cookie)
  const sessions = (await redis.keys('fck:sess:*')).filter((key) => !key.startsWith('fck:sess:client:'))
  t.comment(`Redis: ${sessions.length} sessions kept, ${((await usedMemory() - before) / MB).toFixed(2)} MB more used`)
  t.equal(sessions.length, 20 * 100 + 1, 'each flooding address keeps its last 100 sessions; the user keeps theirs')
  await stillSignedIn(t, port, cookie)
})
