import { execFile, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort, startCluster } from './helpers/cluster.js'

const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))

async function cli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, CLUSTER_MONITORING_TOKEN: '', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })
    })
  })
}

t.test('fastify-cluster against a running cluster: status, stats --json, health, metrics, restart', async (t) => {
  const cluster = await startCluster(t, {}, { maxRestarts: 0, monitoring: { token: 'cli-token-42' } })
  const port = ['--port', String(cluster.monitoringPort)]

  const status = await cli(['status', ...port])
  t.equal(status.code, 0)
  const lines = status.stdout.trim().split('\n')
  t.match(lines[0], /^cluster: healthy, 2\/2 workers alive; primary pid \d+/)
  t.match(lines[1], /^id\s+pid\s+state\s+uptime\s+restarts\s+memory\s+cpu\s+loop p99$/)
  t.match(lines[2], /^0\s+\d+\s+ready\s/)
  t.match(lines[3], /^1\s+\d+\s+ready\s/)

  const stats = await cli(['stats', '--json', ...port])
  t.equal(stats.code, 0)
  t.equal(stats.stdout.trim().split('\n').length, 1, 'one line of JSON')
  const parsed = JSON.parse(stats.stdout)
  t.same(parsed.workers.map((worker: any) => worker.id), ['0', '1'])

  t.same(await cli(['health', ...port]), { code: 0, stdout: 'ok: 2/2 workers alive\n', stderr: '' })
  const metrics = await cli(['metrics'], { CLUSTER_MONITORING_PORT: String(cluster.monitoringPort) })
  t.equal(metrics.code, 0)
  t.match(metrics.stdout, /^cluster_workers_alive 2$/m, 'the port from CLUSTER_MONITORING_PORT')

  const refused = await cli(['restart', ...port, '--token', 'wrong'])
  t.equal(refused.code, 2)
  t.match(refused.stderr, /^fastify-cluster: http:\/\/127\.0\.0\.1:\d+ refused the token \(403\)/)
  const restart = await cli(['restart', ...port], { CLUSTER_MONITORING_TOKEN: 'cli-token-42' })
  t.equal(restart.code, 0, restart.stderr)
  t.match(restart.stdout, /rolling reload done in \d+ ms: worker 0 pid \d+, worker 1 pid \d+/)
  const after = JSON.parse((await cli(['stats', '--json', ...port])).stdout)
  t.equal(after.workers.filter((worker: any) => parsed.workers.some((old: any) => old.pid === worker.pid)).length, 0, 'every pid changed')

  process.kill(after.workers[1].pid, 'SIGKILL') // maxRestarts 0: the slot is given up
  await cluster.waitForEvent((event) => event.event === 'restart-limit')
  const unhealthy = await cli(['health', ...port])
  t.equal(unhealthy.code, 1, 'exit 1 when not healthy')
  t.match(unhealthy.stdout, /^degraded: 1\/2 workers alive\nwarning: worker 1 gave up/)
})

t.test('fastify-cluster status --watch follows /cluster/events: a kill -9 shows as it happens; the stream ending is one line, exit 2', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { sampleInterval: 200 } })
  const watcher = spawn(process.execPath, [CLI, 'status', '--watch', '1', '--port', String(cluster.monitoringPort)], { env: { ...process.env, CLUSTER_MONITORING_TOKEN: '' } })
  let stdout = ''
  let stderr = ''
  watcher.stdout.on('data', (chunk) => { stdout += chunk })
  watcher.stderr.on('data', (chunk) => { stderr += chunk })
  const exited = new Promise<number | null>((resolve) => watcher.once('exit', resolve))
  t.teardown(() => { watcher.kill('SIGKILL') })
  const waitFor = async (pattern: RegExp): Promise<void> => {
    for (let i = 0; i < 300 && !pattern.test(stdout); i++) await sleep(50)
    t.match(stdout, pattern)
  }
  await waitFor(/cluster: healthy, 2\/2 workers alive/)
  const { workers } = await cluster.call('stats')
  process.kill(workers[0].pid, 'SIGKILL')
  await waitFor(new RegExp(`worker:exit \\{"id":"0","pid":${workers[0].pid as number},"code":null,"signal":"SIGKILL","state":"crashed"`))
  await waitFor(/worker:ready \{"id":"0"/)

  cluster.child.kill('SIGTERM')
  t.equal(await exited, 2, 'exit 2 once the cluster stops')
  t.match(stderr, /^fastify-cluster: the event stream from http:\/\/127\.0\.0\.1:\d+ ended: did the cluster stop\?\n$/)
})

t.test('fastify-cluster with nothing listening: one line, exit 2', async (t) => {
  const port = await freePort()
  for (const command of ['status', 'health', 'metrics']) {
    const result = await cli([command, '--port', String(port)])
    t.equal(result.code, 2, command)
    t.equal(result.stdout, '')
    t.match(result.stderr, new RegExp(`^fastify-cluster: nothing answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)[^\\n]*\\n$`))
  }
  const wrong = await cli(['stauts', '--port', String(port)])
  t.same([wrong.code, wrong.stderr], [2, 'fastify-cluster: unknown command "stauts"; commands: status, stats, health, restart, metrics, profile, heap\n'])
})

t.test('fastify-cluster reads the monitoring settings as bootCluster does: a bad one is one line naming it, exit 2', async (t) => {
  t.same(await cli(['status', '--port', '0']),
    { code: 2, stdout: '', stderr: 'fastify-cluster: Invalid option --port: got "0", expected a port number from 1 to 65535\n' })
  t.same(await cli(['status'], { CLUSTER_MONITORING_PORT: 'abc' }),
    { code: 2, stdout: '', stderr: 'fastify-cluster: Invalid environment variable CLUSTER_MONITORING_PORT: got "abc", expected a port number from 1 to 65535\n' })
})
