import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t from 'tap'
import { freePort, pidsWithMarker, startCluster, waitGone } from './helpers/cluster.js'
import { startFixture } from './helpers/fixture.js'
import { get } from './helpers/http.js'

t.test('SIGTERM under load: in-flight requests complete, exit 0, no process of the cluster remains', async (t) => {
  const marker = randomUUID()
  const cluster = await startCluster(t, { FIXTURE_RUN: marker })
  const pids = pidsWithMarker(marker)
  t.equal(pids.length, 4, 'a primary, two workers and the orphan guard')
  // Opened one by one before the load starts, so round-robin hands them to both workers in turn.
  const slow = []
  for (let i = 0; i < 4; i++) {
    slow.push(get(cluster.port, '/slow?ms=2000'))
    await sleep(100)
  }
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 20, duration: 3 })
  await sleep(300)
  cluster.child.kill('SIGTERM')
  const responses = await Promise.all(slow)
  t.same(responses.map((response) => response.status), [200, 200, 200, 200], 'the slow requests in flight completed')
  t.same(new Set(responses.map((response) => response.headers['x-worker-id'])), new Set(['0', '1']), 'on both workers')
  t.same(await cluster.exited, { code: 0, signal: null }, 'the primary exits 0')
  await load
  t.same(await waitGone(pids), [], 'no process of the cluster remains')
})

t.test('SIGTERM with a request outlasting gracefulTimeout: the primary exits 1 and nothing remains', async (t) => {
  const marker = randomUUID()
  const cluster = await startCluster(t, { FIXTURE_RUN: marker }, { gracefulTimeout: 1000 })
  const pids = pidsWithMarker(marker)
  const slow = get(cluster.port, '/slow?ms=10000').catch((error: Error) => error)
  await sleep(200)
  cluster.child.kill('SIGTERM')
  t.same(await cluster.exited, { code: 1, signal: null }, 'not clean: exit 1')
  t.type(await slow, Error, 'the request that outlasted the drain was cut')
  t.same(await waitGone(pids), [], 'no process of the cluster remains')
})

t.test('kill -9 of the primary: its workers do not outlive it', async (t) => {
  const marker = randomUUID()
  const cluster = await startCluster(t, { FIXTURE_RUN: marker })
  const pids = pidsWithMarker(marker)
  t.equal(pids.length, 4, 'a primary, two workers and the orphan guard')
  cluster.child.kill('SIGKILL')
  t.same(await waitGone(pids, 5000), [], 'every worker is gone within 5 s')
})

for (const [name, env] of [
  ['ENABLE_CLUSTERING=false', { ENABLE_CLUSTERING: 'false', NODE_ENV: 'production' }],
  ['NODE_ENV=test', { NODE_ENV: 'test', CLUSTER_WORKERS: '' }]
] as const) {
  t.test(`${name}: one process with the plugin, no fork, same signals`, async (t) => {
    const marker = randomUUID()
    const fixture = await startFixture(t, 'cluster.mjs', {
      env: { ...env, FIXTURE_RUN: marker, FIXTURE_BOOT_OPTIONS: JSON.stringify({ port: await freePort(), host: '127.0.0.1' }) }
    })
    t.same(pidsWithMarker(marker), [fixture.child.pid], 'no worker was forked')
    const response = await get(fixture.port, '/')
    t.equal(response.headers['x-worker-id'], 'single')
    t.equal(response.headers['x-worker-pid'], String(fixture.child.pid))
    const slow = get(fixture.port, '/slow?ms=500')
    await sleep(100)
    fixture.child.kill('SIGTERM')
    t.equal((await slow).status, 200, 'drained')
    t.same(await fixture.exited, { code: 0, signal: null })
  })
}
