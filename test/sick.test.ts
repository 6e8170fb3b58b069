import http from 'node:http'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import t from 'tap'
import { startCluster, until } from './helpers/cluster.js'
import { get } from './helpers/http.js'

// The sick-worker policy: a worker that serves, but with its event loop lagging past a limit for
// a few heartbeats in a row, is replaced (the new one first) after a CPU profile of it is kept.

const sick = (dir: string): Record<string, unknown> => ({ loopDelay: 100, heartbeats: 3, profileSeconds: 1, profileDir: dir })

t.test('a worker whose loop delay p99 stays over the limit is profiled, then replaced; no request fails', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-sick-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cluster = await startCluster(t, {}, { restartWindow: 0, sick: sick(dir), plugin: { heartbeatInterval: 200 } })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const first = await get(cluster.port, '/', agent)
  const victim = { id: String(first.headers['x-worker-id']), pid: Number(first.headers['x-worker-pid']) }
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 10, duration: 8 })
  await get(cluster.port, '/incident/lag?ms=150', agent)
  const recycle = await cluster.waitForEvent((event) => event.event === 'worker:recycle' && event.pid === victim.pid, 20_000)
  t.match(recycle.reason, /^event-loop delay p99 \d+ ms above 100 ms for 3 heartbeats in a row$/)
  const ready = await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.id === victim.id && event.pid !== victim.pid, 20_000)
  const result = await load
  t.equal(result.errors + result.timeouts, 0, `no request failed (${result.requests.total} sent)`)
  t.equal(result.non2xx, 0)
  const { incidents } = (await cluster.call('stats')).workers.find((worker: { id: string }) => worker.id === victim.id)
  t.match(incidents.last, { kind: 'sick', pid: victim.pid, reason: recycle.reason, profile: new RegExp(`^${dir}/.*-worker-${victim.id}-${victim.pid}\\.cpuprofile$`) })
  const profile = JSON.parse(readFileSync(incidents.last.profile, 'utf8')) as { nodes: unknown[], samples: unknown[] }
  t.ok(profile.nodes.length > 0 && profile.samples.length > 0, 'the profile of its last second is kept, and parses')
  t.not(ready.pid, victim.pid)
})

t.test('a release that is sick from its start: replaced once, then the policy stops for the slot and health says why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-sick-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lagFile = join(dir, 'lag')
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1', FIXTURE_LAG_FILE: lagFile }, { restartWindow: 0, sick: { ...sick(dir), profileSeconds: 0 }, plugin: { heartbeatInterval: 200 } })
  writeFileSync(lagFile, '')
  await get(cluster.port, '/incident/lag?ms=150')
  await cluster.waitForEvent((event) => event.event === 'worker:recycle', 20_000)
  const unhealthy = await cluster.waitForEvent((event) => event.event === 'unhealthy', 20_000)
  t.match(unhealthy.warnings, [/^worker 0 is sick from its start \(event-loop delay p99 \d+ ms above 100 ms\): sick-worker replacement stopped$/])
  await new Promise((resolve) => setTimeout(resolve, 2000))
  t.equal(cluster.events().filter((event) => event.event === 'worker:recycle').length, 1, 'no loop of replacements')
  t.match(await until('a ready worker', async () => (await cluster.call('stats')).alive === 1 && await cluster.call('stats')), { workers: [{ state: 'ready', recycles: 1 }] })
})
