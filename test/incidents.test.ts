import http from 'node:http'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout } from 'node:timers/promises'
import t, { type Test } from 'tap'
import ts from 'typescript'
import type { Incident } from '../dist/index.js'
import { startCluster, until } from './helpers/cluster.js'
import { memoryCgroup } from './helpers/cgroup.js'
import { get } from './helpers/http.js'

// Each way a worker is lost, reproduced for real, and what the primary records of it: the event,
// the log line, the slot's incidents in /cluster/stats.

const ROUTES = 'test/fixtures/routes/incidents.mjs'
const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))

/** The worker a keep-alive socket reached, and the socket's agent to send it more. */
async function oneWorker (t: Test, port: number): Promise<{ id: string, pid: number, agent: http.Agent }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const first = await get(port, '/', agent)
  return { id: String(first.headers['x-worker-id']), pid: Number(first.headers['x-worker-pid']), agent }
}

t.test('a hung worker: the kill comes with where its main thread was, in the log, the event and the stats', async (t) => {
  const cluster = await startCluster(t, {}, { heartbeatTimeout: 1000, restartWindow: 0 })
  const victim = await oneWorker(t, cluster.port)
  get(cluster.port, '/incident/spin', victim.agent).catch(() => undefined)
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim.pid, 15_000)
  const incident: Incident = exit.incident
  t.match(incident, { kind: 'hang', id: victim.id, pid: victim.pid, reason: /^no heartbeat for \d+ ms \(heartbeatTimeout 1000 ms\); its main thread was in hashPassword \(test\/fixtures\/routes\/incidents\.mjs:\d+:\d+\)/ })
  t.match(incident.frames[0], { function: 'hashPassword', file: ROUTES, line: 7 }, 'the top frame: the function, its file and line')
  t.ok(incident.frames.length > 1, 'and its callers')
  t.match(cluster.output(), /killing worker \d: no heartbeat for \d+ ms .*; its main thread was in hashPassword \(test\/fixtures\/routes\/incidents\.mjs:7:\d+\) < /, 'the log line for the kill')
  const stats = await cluster.call('stats')
  t.match(stats.workers.find((worker: { id: string }) => worker.id === victim.id).incidents, { first: { kind: 'hang', pid: victim.pid }, last: { kind: 'hang', pid: victim.pid } })
  const status = execFileSync(process.execPath, [CLI, 'status', '--port', String(cluster.monitoringPort)], { encoding: 'utf8', env: { ...process.env, CLUSTER_MONITORING_TOKEN: '' } })
  t.match(status, new RegExp(`last incident of worker ${victim.id}: \\S+ pid ${victim.pid} hang: no heartbeat .*\\n    at hashPassword \\(test/fixtures/routes/incidents\\.mjs:7:\\d+\\)`), 'fastify-cluster status shows it')
})

t.test('an uncaught exception and an unhandled rejection: the exit carries the message and where it was thrown', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1' }, { restartWindow: 0 })
  const first = await oneWorker(t, cluster.port)
  await get(cluster.port, '/incident/throw', first.agent)
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === first.pid)
  t.match(exit, { code: 1, state: 'crashed', reason: /^TypeError: Cannot read properties of undefined \(reading 'id'\) at test\/fixtures\/routes\/incidents\.mjs:11$/ })
  t.match(exit.incident.frames[0], { function: 'loadUser', file: ROUTES, line: 11 })
  t.match(cluster.output(), /"level":40.*worker \d: ready -> crashed \(exit code 1: TypeError: Cannot read properties of undefined \(reading 'id'\) at test\/fixtures\/routes\/incidents\.mjs:11\)/, 'a warning naming it')

  await cluster.waitForEvent((event) => event.event === 'worker:ready' && event.pid !== first.pid)
  const second = await oneWorker(t, cluster.port)
  await get(cluster.port, '/incident/reject', second.agent)
  const rejected = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === second.pid)
  t.match(rejected.reason, /^RangeError: the rejection nobody awaited at test\/fixtures\/routes\/incidents\.mjs:\d+$/)
  const [{ incidents }] = (await cluster.call('stats')).workers
  t.match(incidents, { first: { kind: 'crash', pid: first.pid }, last: { kind: 'crash', pid: second.pid } }, 'the slot keeps the first and the latest')
})

t.test('a worker the kernel\'s OOM killer ends is named so (a memory cgroup, as a container has)', async (t) => {
  const cgroup = memoryCgroup(t, 400 * 2 ** 20)
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1' }, { restartWindow: 0, plugin: { heartbeatInterval: 100 } }, { prefix: cgroup.prefix })
  const victim = await oneWorker(t, cluster.port)
  // Buffers, outside V8's heap: the cgroup's limit is reached before any heap limit. Growing in
  // steps with heartbeats between them gives the primary the resident size it reports; all at once,
  // the worker was killed before its first heartbeat on a fast run.
  for (let i = 0; i < 40; i++) {
    await setTimeout(300)
    if (await get(cluster.port, '/grow?mb=25', victim.agent).then(() => false, () => true)) break
  }
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim.pid)
  t.match(exit, { signal: 'SIGKILL', incident: { kind: 'oom-kill', reason: /^killed by the kernel's OOM killer \(its cgroup counted an oom_kill in \/sys\/fs\/cgroup\/.*; \d+ MB resident at the last heartbeat\)$/ } })
})

t.test('a worker that runs its heap out is named a heap out-of-memory', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1', NODE_OPTIONS: '--max-old-space-size=96' }, { restartWindow: 0, plugin: { heartbeatInterval: 200 } })
  const victim = await oneWorker(t, cluster.port)
  await get(cluster.port, '/incident/leak?mb=2', victim.agent)
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim.pid, 60_000)
  t.match(exit, { signal: 'SIGABRT', incident: { kind: 'heap-oom', reason: /^V8 heap out of memory \(Allocation failed - JavaScript heap out of memory; \d+ MB of heap in use\); raise --max-old-space-size/ } })
})

t.test('a SIGKILL from outside is said to be one; no inspector port or thread while workers are healthy', async (t) => {
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1' }, { restartWindow: 0 })
  const victim = await oneWorker(t, cluster.port)
  // The same worker without the inspector flag (hangStack off), for its threads.
  const plain = await startCluster(t, { CLUSTER_WORKERS: '1', CLUSTER_HANG_STACK: 'false' }, { restartWindow: 0 })
  const control = await oneWorker(t, plain.port)
  const threads = (pid: number): string[] => readdirSync(`/proc/${pid}/task`).map((task) => readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim())
  t.equal(threads(victim.pid).length, threads(control.pid).length, `as many threads as a worker without the flag (${threads(victim.pid).join(', ')})`)
  // Node 23 and later name their threads: the inspector's I/O thread is InspectorIo, started only when the inspector opens.
  t.notOk(threads(victim.pid).includes('InspectorIo'), 'no inspector I/O thread')
  const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(`pid=${victim.pid},`))
  t.same(listening, [], 'the worker listens on no port of its own (round-robin: the primary holds the app\'s)')
  process.kill(victim.pid, 'SIGKILL')
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim.pid)
  t.match(exit.incident, { kind: 'signal', reason: 'killed by SIGKILL from outside the kit' })
  await until('a replacement', async () => (await cluster.call('stats')).alive === 1)
})

t.test('a hung worker in code compiled with a source map: the frames name the TypeScript source', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-mapped-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // The TypeScript compiler's own output: the file ends with its sourceMappingURL, the map beside it.
  const source = [
    'type Password = string',
    '',
    'export function checkPassword (password: Password): number {',
    '  let hash = 0',
    '  for (;;) for (let i = 0; i < password.length; i++) hash = (hash * 31 + password.charCodeAt(i)) | 0',
    '}',
    '',
    'export function register (app: { get: (path: string, handler: () => Promise<unknown>) => void }): void {',
    "  app.get('/incident/spin-mapped', async () => checkPassword('hunter2'))",
    '}',
    ''
  ].join('\n')
  writeFileSync(join(dir, 'auth.ts'), source)
  const { outputText, sourceMapText } = ts.transpileModule(source, {
    fileName: 'auth.ts', compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: true }
  })
  writeFileSync(join(dir, 'auth.mjs'), outputText.replace('//# sourceMappingURL=auth.js.map', '//# sourceMappingURL=auth.mjs.map'))
  writeFileSync(join(dir, 'auth.mjs.map'), (sourceMapText as string).replace('"auth.js"', '"auth.mjs"'))
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '1', FIXTURE_MAPPED_ROUTES: join(dir, 'auth.mjs') }, { heartbeatTimeout: 1000, restartWindow: 0 })
  const victim = await oneWorker(t, cluster.port)
  get(cluster.port, '/incident/spin-mapped', victim.agent).catch(() => undefined)
  const exit = await cluster.waitForEvent((event) => event.event === 'worker:exit' && event.pid === victim.pid, 15_000)
  t.match(exit.incident.frames[0], { function: 'checkPassword', file: new RegExp(`${relative(process.cwd(), join(dir, 'auth.ts')).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), line: 5 },
    'the TypeScript file and line, not the compiled one')
})
