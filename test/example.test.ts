import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { io, type Socket } from 'socket.io-client'
import t from 'tap'
import { freePort, pidsWithMarker, waitGone } from './helpers/cluster.js'
import { spawnScript, waitForOutput } from './helpers/fixture.js'
import { onWorker, send, sessionCookie, type Request } from './helpers/http.js'
import { privatePm2 } from './helpers/pm2.js'
import { startRedis } from './helpers/redis.js'

const EXAMPLE = fileURLToPath(new URL('../examples/attendance-dashboard/', import.meta.url))

const json = (name: string): Request['headers'] => ({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(name) })

for (const withRedis of [false, true]) {
  t.test(`the example as \`npm start\` runs it${withRedis ? ', with REDIS_URL' : ''}: sessions, the check-in limit and live updates across workers; SIGTERM stops it cleanly`, async (t) => {
    const marker = randomUUID()
    const dataDir = mkdtempSync(join(tmpdir(), 'fck-attendance-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const port = await freePort()
    // `npm start` builds, then runs exactly this: the example, clustered, production profile.
    const { child, output, exited } = spawnScript(join(EXAMPLE, 'dist/server.js'), {
      NODE_ENV: 'production',
      PORT: String(port),
      CLUSTER_MONITORING_PORT: String(await freePort()),
      DATA_DIR: dataDir,
      CHECKIN_RATE_LIMIT: '3',
      LOG_LEVEL: 'warn',
      FIXTURE_RUN: marker,
      REDIS_URL: withRedis ? (await startRedis(t)).url : ''
    }, false)
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    await waitForOutput(output, 'Dashboard   http://')
    t.match(output(), new RegExp(`Dashboard   http://127\\.0\\.0\\.1:${port}/`), 'it prints where to look')
    t.match(output(), withRedis ? /shared state in Redis/ : /shared state in the primary \(no Redis\)/)
    const pids = pidsWithMarker(marker)
    t.equal(pids.length, 4, 'a primary, one worker per core (2 here) and the orphan guard')

    const body = JSON.stringify({ name: 'Ada Lovelace' })
    const signIn = await onWorker(port, '0', { method: 'POST', path: '/api/sign-in', headers: json(body), body })
    t.equal(signIn.status, 200)
    const cookie = sessionCookie(signIn)
    const me = await onWorker(port, '1', { path: '/api/me', headers: { cookie } })
    t.same(JSON.parse(me.body), { person: 'Ada Lovelace', workerId: '1' }, 'signed in on worker 0, known on worker 1')

    const socket: Socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true })
    t.teardown(() => socket.close())
    const hello = await new Promise<{ workerId: string }>((resolve) => socket.once('hello', resolve))
    const received = new Promise<any>((resolve) => socket.once('attendance', resolve))
    const checkIn = await onWorker(port, hello.workerId, { method: 'POST', path: '/api/check-in', headers: { cookie } }, true)
    t.equal(checkIn.status, 200)
    t.not(checkIn.headers['x-worker-id'], hello.workerId, 'checked in through the other worker')
    const event = await received
    t.match(event, { person: 'Ada Lovelace', action: 'in', workerId: checkIn.headers['x-worker-id'] }, 'the dashboard connected to one worker saw a check-in made on another')

    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await send(port, { method: 'POST', path: '/api/check-out', headers: { cookie } })).status)
    t.same(statuses, [200, 200, 200, 429, 429], 'the limit of 3 check-outs a minute per person holds across workers')
    const today = JSON.parse((await send(port, { path: '/api/today' })).body)
    t.match(today.people, [{ person: 'Ada Lovelace', status: 'out' }], `records are shared (${withRedis ? 'Redis' : 'SQLite, WAL'})`)
    t.equal((await send(port, { method: 'POST', path: '/api/check-in' })).status, 401, 'no session, no check-in')

    child.kill('SIGTERM')
    const { code, signal } = await exited
    t.same({ code, signal }, { code: 0, signal: null }, 'exit 0 on SIGTERM')
    t.same(await waitGone(pids), [], 'no process left')
  })
}

t.test('the PM2 ecosystem file: two NODE_APP_INSTANCE ids answer, pm2 reload under load drops no request', async (t) => {
  const port = await freePort()
  const pm2 = privatePm2(t, { PORT: String(port), DATA_DIR: mkdtempSync(join(tmpdir(), 'fck-attendance-pm2-')), LOG_LEVEL: 'warn', REDIS_URL: '' })
  await pm2('start', join(EXAMPLE, 'ecosystem.config.cjs'))
  const ids = async (): Promise<Map<string, string>> => {
    const seen = new Map<string, string>()
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const response = await send(port, { path: '/health/live' }).catch(() => undefined)
      if (response?.status === 200) seen.set(String(response.headers['x-worker-id']), String(response.headers['x-worker-pid']))
    }
    return seen
  }
  let before = new Map<string, string>()
  for (let i = 0; i < 100 && before.size < 2; i++) {
    before = await ids()
    if (before.size < 2) await sleep(100)
  }
  t.same([...before.keys()].sort(), ['0', '1'], 'instances: max gives one per core, ids from NODE_APP_INSTANCE')
  const load = autocannon({ url: `http://127.0.0.1:${port}/api/today`, connections: 50, duration: 8 })
  await sleep(1000)
  await pm2('reload', 'attendance-dashboard')
  const result = await load
  t.same([result.errors, result.timeouts, result.non2xx], [0, 0, 0], 'no error, timeout or non-2xx during pm2 reload')
  t.ok(result.requests.total > 500, `${result.requests.total} requests`)
  const after = await ids()
  t.equal([...after.values()].filter((pid) => [...before.values()].includes(pid)).length, 0, 'both instances were replaced')
  await pm2('delete', 'attendance-dashboard')
})

for (const value of ['abc', '-1', '0']) {
  t.test(`the example with CHECKIN_RATE_LIMIT=${value}: exit 1 with one line naming it, not a silently removed limit`, async (t) => {
    const { output, exited } = spawnScript(join(EXAMPLE, 'dist/server.js'), { CHECKIN_RATE_LIMIT: value, PORT: String(await freePort()), CLUSTER_MONITORING_PORT: 'false' }, false)
    t.same(await exited, { code: 1, signal: null })
    t.same(output().trim().split('\n'), [`attendance-dashboard: Invalid environment variable CHECKIN_RATE_LIMIT: got "${value}", expected a whole number >= 1`])
  })
}
