import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t, { type Test } from 'tap'
import { childrenOf, freePort, startCluster, until, waitGone, type ClusterFixture } from './helpers/cluster.js'
import { SHUTDOWN_DELAY, startHaproxy, type LoadBalancer } from './helpers/haproxy.js'
import { startNginx } from './helpers/nginx.js'
import { send, sessionCookie } from './helpers/http.js'
import { startRedis } from './helpers/redis.js'

// Three "hosts" on their own loopback addresses, each one bootCluster with 2 workers on the same
// port, one shared Redis, and HAProxy in front with deploy/haproxy/haproxy.cfg as shipped.
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
const SECRET = 'a-session-secret-of-at-least-32-characters'
/** The address the rate-limit client sends from: the load comes from 127.0.0.1, which is allowed. */
const CLIENT = '127.0.0.9'

interface Bed {
  /** The balancer's port (on 127.0.0.1), the hosts' port (on each address), the hosts as started last. */
  lb: number
  port: number
  hosts: ClusterFixture[]
  /** Starts host i (again). */
  start: (i: number) => Promise<ClusterFixture>
  /** Resolves once the balancer sends host i traffic again (HAProxy: its check says UP). */
  rejoined: (i: number) => Promise<void>
  /** HAProxy's servers' states; nginx has none. */
  haproxy?: LoadBalancer
}

async function startBed (t: Test, balancer: 'haproxy' | 'nginx' = 'haproxy'): Promise<Bed> {
  const redis = await startRedis(t)
  const port = await freePort()
  const plugin = {
    shutdownDelay: SHUTDOWN_DELAY,
    rateLimit: { max: 50, timeWindow: '10 minutes', allowList: ['127.0.0.1'] },
    session: { secret: SECRET, cookie: { secure: false }, saveUninitialized: false }
  }
  const start = async (i: number): Promise<ClusterFixture> => await startCluster(t, {
    REDIS_URL: redis.url,
    FIXTURE_TRUST_PROXY: '127.0.0.1',
    FIXTURE_PLUGIN_OPTIONS: JSON.stringify(plugin)
  }, { host: ADDRESSES[i], port })
  const hosts = await Promise.all(ADDRESSES.map(async (_, i) => await start(i)))
  const upstreams = ADDRESSES.map((address) => `${address}:${port}`)
  if (balancer === 'nginx') {
    // No active checks in nginx open source: a host is back in once it accepts connections.
    const lb = await startNginx(t, upstreams)
    return { lb: lb.port, port, hosts, start, rejoined: async (i) => { await ready(ADDRESSES[i] as string, port) } }
  }
  const lb = await startHaproxy(t, upstreams)
  for (const name of ['host1', 'host2', 'host3']) await lb.waitFor(name, 'UP')
  return { lb: lb.port, port, hosts, start, rejoined: async (i) => { await lb.waitFor(`host${i + 1}`, 'UP') }, haproxy: lb }
}

/** Waits until `host:port` answers /health/ready with 200. */
async function ready (host: string, port: number): Promise<void> {
  await until(`${host}:${port} to answer /health/ready with 200`, async () =>
    (await send(port, { host, path: '/health/ready' }).catch(() => undefined))?.status === 200, 20_000)
}

/** Keep-alive load through the balancer until `stop()`, which resolves with autocannon's result. */
function loadUntilStopped (port: number, connections: number): { stop: () => Promise<autocannon.Result>, errors: Map<string, number> } {
  let done!: (result: autocannon.Result) => void
  const finished = new Promise<autocannon.Result>((resolve) => { done = resolve })
  const instance = autocannon({ url: `http://127.0.0.1:${port}/`, connections, duration: 300 }, (_error, result) => done(result))
  // What each connection error was, for the assertion's message: autocannon only counts them.
  const errors = new Map<string, number>()
  instance.on('reqError', (error: Error & { code?: string }) => {
    const key = error.code ?? error.message
    errors.set(key, (errors.get(key) ?? 0) + 1)
  })
  return {
    errors,
    stop: async () => {
      instance.stop()
      return await finished
    }
  }
}

/** Under keep-alive load through the balancer, each host in turn: SIGTERM, exit, start again, back in; then 0 failed requests. */
async function rollingDeploy (t: Test, bed: Bed): Promise<void> {
  const load = loadUntilStopped(bed.lb, 100)
  await sleep(1000)
  for (const [i, host] of bed.hosts.entries()) {
    const old = [host.child.pid as number, ...await pidsOf(host)]
    host.child.kill('SIGTERM')
    t.same(await host.exited, { code: 0, signal: null }, `host ${i + 1} drained and exited cleanly`)
    t.same(await waitGone(old), [], `host ${i + 1}: no process left`)
    bed.hosts[i] = await bed.start(i)
    await bed.rejoined(i)
    await sleep(500)
  }
  const result = await load.stop()
  t.equal(result.errors, 0, `no connection error through the balancer ${JSON.stringify(Object.fromEntries(load.errors))}`)
  t.equal(result.timeouts, 0, 'no timeout')
  t.equal(result.non2xx, 0, 'no non-2xx answer')
  t.ok(result.requests.total > 1000, `${result.requests.total} requests during the deploy`)
}

/** Every worker pid of a host. */
async function pidsOf (host: ClusterFixture): Promise<number[]> {
  const stats = await host.call('stats')
  return stats.workers.map((worker: any) => worker.pid)
}

t.test('rolling deploy of 3 hosts behind HAProxy under keep-alive load: 0 failed requests; the limit and a session survive', async (t) => {
  const bed = await startBed(t)

  // Cluster-wide state across hosts, through the balancer and host to host.
  const limited = []
  for (let i = 0; i < 60; i++) limited.push(await send(bed.lb, { path: '/', localAddress: CLIENT }))
  t.equal(limited.filter((response) => response.status === 200).length, 50, '50 of 60 from one client pass, across 3 hosts')
  t.equal(limited.filter((response) => response.status === 429).length, 10)
  const answeredBy = new Set(limited.filter((response) => response.status === 200).map((response) => response.headers['x-worker-pid']))
  const allPids = (await Promise.all(bed.hosts.map(pidsOf))).flat().map(String)
  t.ok([...answeredBy].every((pid) => allPids.includes(pid as string)) && answeredBy.size >= 3, `answered by ${answeredBy.size} workers over the hosts`)
  const created = await send(bed.port, { host: ADDRESSES[0] as string, method: 'POST', path: '/session?value=kept' })
  const cookie = sessionCookie(created)
  const read = await send(bed.port, { host: ADDRESSES[2] as string, path: '/session', headers: { cookie } })
  t.equal(JSON.parse(read.body).value, 'kept', 'a session made on host 1 is read on host 3')

  await rollingDeploy(t, bed)

  const after = await send(bed.lb, { path: '/', localAddress: CLIENT })
  t.equal(after.status, 429, 'the client is still over its limit after every host was replaced')
  const again = await send(bed.port, { host: ADDRESSES[1] as string, path: '/session', headers: { cookie } })
  t.equal(JSON.parse(again.body).value, 'kept', 'the session is still there, on another new host')
})

t.test('kill -9 of a whole host under load: at most the requests in flight on it fail; HAProxy routes around it; it rejoins after a restart', async (t) => {
  const bed = await startBed(t)
  const connections = 60
  const load = loadUntilStopped(bed.lb, connections)
  await sleep(1500)
  const victim = bed.hosts[1] as ClusterFixture
  const pids = [victim.child.pid as number, ...childrenOf(victim.child.pid as number)]
  for (const pid of pids) process.kill(pid, 'SIGKILL')
  t.same(await waitGone(pids), [], 'the host is gone: primary and workers')
  const haproxy = bed.haproxy as LoadBalancer
  await haproxy.waitFor('host2', 'DOWN')
  const routedAround = Date.now()
  await sleep(1500)
  bed.hosts[1] = await bed.start(1)
  await haproxy.waitFor('host2', 'UP')
  const rejoined = Date.now()
  // The restarted host takes its share again, with no step but its start.
  const newPids = (await pidsOf(bed.hosts[1] as ClusterFixture)).map(String)
  let served = false
  for (let i = 0; i < 30 && !served; i++) served = newPids.includes(String((await send(bed.lb, { path: '/' })).headers['x-worker-pid']))
  const result = await load.stop()
  const failed = result.errors + result.timeouts + result.non2xx
  t.ok(failed <= connections, `${failed} failed of ${result.requests.total} (at most the ${connections} in flight could be on the host)`)
  t.ok(served, 'the restarted host answers through the balancer')
  t.comment(`kill -9 of a host: ${failed} failed requests of ${result.requests.total}; down in HAProxy, then up ${rejoined - routedAround} ms after that`)
})

t.test('rolling deploy of 3 hosts behind nginx (passive checks, proxy_next_upstream) under keep-alive load: 0 failed requests', async (t) => {
  await rollingDeploy(t, await startBed(t, 'nginx'))
})
