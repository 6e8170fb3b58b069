import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startCluster, until } from './helpers/cluster.js'
import { get, send } from './helpers/http.js'

// CPU profiles and heap snapshots of a worker on demand, over the monitoring API and the CLI.

const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))
const TOKEN = 'diagnostics-token'
const auth = { authorization: `Bearer ${TOKEN}` }

interface CpuProfile { nodes: Array<{ id: number, callFrame: { functionName: string, url: string } }>, samples: number[], startTime: number, endTime: number }

/** Functions by the samples in which they were on top of the stack, most first. */
function topSelf (profile: CpuProfile): string[] {
  const self = new Map<number, number>()
  for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1)
  const byName = new Map<string, number>()
  for (const node of profile.nodes) {
    const name = node.callFrame.functionName
    if (name !== '' && !name.startsWith('(')) byName.set(name, (byName.get(name) ?? 0) + (self.get(node.id) ?? 0))
  }
  return [...byName].sort((a, b) => b[1] - a[1]).map(([name]) => name)
}

async function cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, CLUSTER_MONITORING_TOKEN: TOKEN } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })
    })
  })
}

t.test('a CPU profile and a heap snapshot of a worker while it serves; one at a time; the token guards them', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1' }, { monitoring: { token: TOKEN } })
  const port = cluster.monitoringPort
  const dir = mkdtempSync(join(tmpdir(), 'fck-diagnostics-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  t.equal((await send(port, { method: 'POST', path: '/cluster/workers/0/profile?seconds=1' })).status, 401, 'no token, no profile')
  t.equal((await send(port, { method: 'POST', path: '/cluster/workers/7/profile?seconds=1', headers: auth })).status, 404, 'no such worker')
  t.equal((await send(port, { method: 'POST', path: '/cluster/workers/0/profile?seconds=0', headers: auth })).status, 400, 'seconds out of bounds')

  await get(cluster.port, '/incident/busy?ms=4000')
  const profiling = send(port, { method: 'POST', path: '/cluster/workers/0/profile?seconds=2', headers: auth })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const second = await send(port, { method: 'POST', path: '/cluster/workers/0/heap-snapshot', headers: auth })
  t.match(second, { status: 409, body: /already giving a profile or snapshot; one at a time/ }, 'one at a time per worker')
  const served = await get(cluster.port, '/')
  t.equal(served.status, 200, 'the worker serves while it is profiled')
  const response = await profiling
  t.equal(response.status, 200)
  t.match(response.headers['content-disposition'], /attachment; filename="worker-0\.cpuprofile"/)
  const profile = JSON.parse(response.body) as CpuProfile
  t.ok(profile.nodes.length > 0 && profile.samples.length > 0 && profile.endTime - profile.startTime >= 1_900_000, 'a .cpuprofile of about 2 s (µs)')
  t.ok(topSelf(profile).slice(0, 5).includes('computePrimes'), `computePrimes among the top self-time functions: ${topSelf(profile).slice(0, 5).join(', ')}`)

  await get(cluster.port, '/incident/remember?text=a-string-only-this-worker-holds-4f1c9')
  const out = join(dir, 'w0.heapsnapshot')
  const heap = await cli(['heap', '0', '-o', out, '--port', String(port)])
  t.equal(heap.code, 0, heap.stderr)
  t.match(heap.stdout, new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: heap snapshot of worker 0, \\d+\\.\\d MB\\n$`))
  const snapshot = JSON.parse(readFileSync(out, 'utf8')) as { snapshot: { meta: object }, strings: string[] }
  t.ok(snapshot.snapshot.meta !== undefined, 'it parses as a .heapsnapshot')
  t.ok(snapshot.strings.includes('a-string-only-this-worker-holds-4f1c9'), 'and holds the string the worker kept')

  const cpu = join(dir, 'w0.cpuprofile')
  const viaCli = await cli(['profile', '0', '--seconds', '1', '-o', cpu, '--port', String(port)])
  t.equal(viaCli.code, 0, viaCli.stderr)
  t.ok((JSON.parse(readFileSync(cpu, 'utf8')) as CpuProfile).samples.length > 0, 'fastify-cluster profile writes a .cpuprofile')
  t.match(await cli(['profile', 'x', '--port', String(port)]), { code: 2, stderr: /profile: got "x", expected a worker id/ })
  t.match((await cluster.call('stats')).workers[0], { state: 'ready', restarts: 0 }, 'the worker was not killed for the heartbeats a snapshot held up')
})

t.test('a heap snapshot that would not fit under maxMemory is refused with the numbers', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1' }, { maxMemory: '320M', plugin: { heartbeatInterval: 200 } })
  await get(cluster.port, '/incident/heap?mb=60')
  // The primary judges by the last heartbeat: wait until one carries the bigger heap.
  await until('a heartbeat with the heap', async () => ((await cluster.call('stats')).workers[0].memory?.heapUsed ?? 0) > 60 * 2 ** 20)
  const refused = await send(cluster.monitoringPort, { method: 'POST', path: '/cluster/workers/0/heap-snapshot' })
  t.match(refused, { status: 507, body: /a heap snapshot of worker 0 needs about \d+ MB more, which would take it past maxMemory \(320 MB\)/ })
  t.match((await cluster.call('stats')).workers[0], { state: 'ready', restarts: 0, recycles: 0 })
})
