import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t from 'tap'
import { startCluster, waitGone, type ClusterFixture } from './helpers/cluster.js'
import { closeLoad, get } from './helpers/http.js'

// Kernel balancing needs Linux and Node >= 22.12 (older Node ignores `reusePort`). CI runs this
// file on Node 22, 24 and 26; on an older Node it says why it does not run the mode's tests.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
const supported = process.platform === 'linux' && (major > 22 || (major === 22 && minor >= 12))
const unsupported = supported ? false : `SO_REUSEPORT balancing needs Linux and Node >= 22.12; this is ${process.platform}, Node ${process.versions.node}`

/** The LISTEN sockets on `port`: each one's inode and the pids holding a descriptor of it. */
function listeners (port: number): Array<{ inode: string, pids: number[] }> {
  const text = execFileSync('ss', ['-ltnpeH', `sport = :${port}`], { encoding: 'utf8' })
  return text.trim().split('\n').filter((line) => line !== '').map((line) => ({
    inode: /ino:(\d+)/.exec(line)?.[1] ?? '',
    pids: [...line.matchAll(/pid=(\d+)/g)].map(([, pid]) => Number(pid))
  }))
}

async function reuseportCluster (t: Parameters<typeof startCluster>[0], boot: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<ClusterFixture> {
  return await startCluster(t, { LOG_LEVEL: 'info', ...env }, { balancing: 'reuseport', ...boot })
}

const workerPids = async (cluster: ClusterFixture): Promise<number[]> => (await cluster.call('stats')).workers.map((worker: any) => worker.pid)

t.test('reuseport: each worker owns a listening socket, the primary only holds them: with the primary stopped, both workers still serve', { skip: unsupported }, async (t) => {
  const cluster = await reuseportCluster(t)
  t.match(cluster.output(), /"balancing":"reuseport"/, 'the start log says which balancing runs')
  const primary = cluster.child.pid as number
  const workers = await workerPids(cluster)
  const sockets = listeners(cluster.port)
  t.equal(sockets.length, 2, 'one SO_REUSEPORT socket per worker')
  t.same(sockets.map(({ pids }) => pids.filter((pid) => pid !== primary)).flat().sort(), [...workers].sort(), 'each socket is a worker\'s')

  process.kill(primary, 'SIGSTOP')
  let served: Set<string>
  try {
    served = new Set()
    for (let i = 0; i < 40 && served.size < 2; i++) served.add(String((await get(cluster.port, '/')).headers['x-worker-pid']))
  } finally {
    process.kill(primary, 'SIGCONT')
  }
  t.same([...served].sort(), workers.map(String).sort(), 'no connection crosses the primary')
})

t.test('reuseport: a slot keeps its socket across a kill -9 and a rolling reload', { skip: unsupported }, async (t) => {
  // restartWindow 0: the killed worker counts as one that ran long, replaced at once (an early
  // crash waits out a back-off, and its slot lets the socket go rather than keep clients waiting).
  const cluster = await reuseportCluster(t, { restartWindow: 0 })
  const before = listeners(cluster.port).map(({ inode }) => inode).sort()
  const [victim] = await workerPids(cluster)
  process.kill(victim as number, 'SIGKILL')
  await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === '0' && event.pid !== victim)
  t.same(listeners(cluster.port).map(({ inode }) => inode).sort(), before, 'the replacement listens on the dead worker\'s socket')
  t.match(await cluster.call('reload'), { ok: true })
  const after = listeners(cluster.port)
  t.same(after.map(({ inode }) => inode).sort(), before, 'and so do the workers of a reload')
  const workers = await workerPids(cluster)
  t.same(after.map(({ pids }) => pids.filter((pid) => workers.includes(pid)).length), [1, 1], 'each held by one current worker')
})

t.test('reuseport: while a killed worker\'s replacement starts, another worker accepts on its socket: new connections are served at once', { skip: unsupported }, async (t) => {
  const slow = join(tmpdir(), `fck-slow-start-${process.pid}-${Date.now()}`)
  t.teardown(() => rmSync(slow, { force: true }))
  const cluster = await reuseportCluster(t, { restartWindow: 0 }, { FIXTURE_SLOW_START_FILE: slow })
  const [victim, survivor] = await workerPids(cluster) as [number, number]
  const socketOf = (pid: number): string | undefined => listeners(cluster.port).find(({ pids }) => pids.includes(pid))?.inode
  const deadSocket = socketOf(victim)
  writeFileSync(slow, 'the replacement takes 3 s to start')
  process.kill(victim, 'SIGKILL')
  await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim)
  // Each request on a new connection: half of them land on the dead worker's socket.
  const started = Date.now()
  const answers = []
  for (let i = 0; i < 30; i++) answers.push(await get(cluster.port, '/'))
  const took = Date.now() - started
  t.same([...new Set(answers.map((answer) => answer.status))], [200])
  t.same([...new Set(answers.map((answer) => answer.headers['x-worker-pid']))], [String(survivor)], 'all served by the surviving worker')
  t.ok(took < 2500, `30 new connections served in ${took} ms, before the replacement is up (3 s)`)
  t.ok(listeners(cluster.port).some(({ inode, pids }) => inode === deadSocket && pids.includes(survivor)), 'the survivor holds the dead worker\'s socket')
  const ready = await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === '0' && event.pid !== victim)
  await sleep(200)
  t.equal(socketOf(ready.pid), deadSocket, 'the replacement listens on the slot\'s socket')
  t.notOk(listeners(cluster.port).some(({ inode, pids }) => inode === deadSocket && pids.includes(survivor)), 'and the survivor let it go')
})

t.test('reuseport: rolling reload under keep-alive load: 0 failed requests', { skip: unsupported }, async (t) => {
  const cluster = await reuseportCluster(t)
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 100, duration: 8 })
  await sleep(1000)
  t.match(await cluster.call('reload'), { ok: true })
  const result = await load
  t.same({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }, { errors: 0, timeouts: 0, non2xx: 0 })
  t.ok(result.requests.total > 1000, `${result.requests.total} requests`)
})

t.test('reuseport: rolling reload under one request per connection: 0 failed requests', { skip: unsupported }, async (t) => {
  const cluster = await reuseportCluster(t)
  const load = closeLoad(cluster.port, 50)
  await sleep(1000)
  t.match(await cluster.call('reload'), { ok: true })
  await sleep(1000)
  const result = await load.stop()
  t.same(result.errors, {}, 'no connection reset or refused')
  t.equal(result.non2xx, 0)
  t.ok(result.ok > 500, `${result.ok} requests, each on its own connection`)
})

t.test('reuseport: SIGTERM under load: in-flight requests complete on both workers, exit 0, nothing remains', { skip: unsupported }, async (t) => {
  const cluster = await reuseportCluster(t)
  const workers = await workerPids(cluster)
  const slow = []
  for (let i = 0; i < 6; i++) slow.push(get(cluster.port, '/slow?ms=1500'))
  await sleep(300)
  cluster.child.kill('SIGTERM')
  const responses = await Promise.all(slow)
  t.same(responses.map((response) => response.status), [200, 200, 200, 200, 200, 200], 'every request in flight completed')
  t.same(await cluster.exited, { code: 0, signal: null })
  t.same(await waitGone(workers), [], 'the workers are gone')
  t.same(listeners(cluster.port), [], 'no socket is left listening')
})

t.test('balancing reuseport where it cannot work falls back to round-robin with one line saying why', async (t) => {
  // Port 0 would give each worker its own port (and Node < 22.12 has no reusePort): round-robin.
  const cluster = await startCluster(t, { LOG_LEVEL: 'info' }, { balancing: 'reuseport', port: 0 })
  const lines = cluster.output().split('\n').filter((line) => line.includes('using round-robin'))
  t.equal(lines.length, 1, 'one line')
  t.match(JSON.parse(lines[0] as string), { level: 40, msg: /^balancing reuseport: .*; using round-robin$/ })
})
