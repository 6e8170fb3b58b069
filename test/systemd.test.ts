// systemd: sd_notify from the primary, socket activation (and a full restart that refuses
// nothing), and the shipped units. Debian's systemd-notify and systemd-socket-activate are the
// real tools; a Python script stands in for PID 1 where Node cannot (datagram unix sockets, a
// listening socket held without accepting on it).
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t, { type Test } from 'tap'
import { BOOT_SETTINGS } from '../dist/primary/settings.js'
import { freePort, startCluster, until } from './helpers/cluster.js'
import { fixturePath, spawnScript, waitForOutput } from './helpers/fixture.js'
import { generatedApp } from './helpers/generated-app.js'
import { get } from './helpers/http.js'

const run = promisify(execFile)
const helper = (name: string): string => fileURLToPath(new URL(`helpers/${name}`, import.meta.url))
const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))
const UNITS = fileURLToPath(new URL('../deploy/systemd/', import.meta.url))

/** A Python child printing JSON lines; `lines()` parses what it printed so far. */
function python (t: Test, script: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess, lines: () => any[] } {
  const child = spawn('python3', [helper(script), ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  let text = ''
  child.stdout?.on('data', (chunk: Buffer) => { text += chunk.toString() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  return { child, lines: () => text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)) }
}

t.test('under NOTIFY_SOCKET: READY, STATUS, WATCHDOG, RELOADING ... READY and STOPPING, in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-notify-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const socket = join(dir, 'notify')
  const receiver = python(t, 'notify-socket.py', [socket])
  await until('the notify socket', () => receiver.lines().some((line) => line.bound === socket))
  const messages = (): Array<Record<string, string>> => receiver.lines().filter((line) => line.fields !== undefined && line.fields.BARRIER === undefined).map((line) => line.fields)

  const cluster = await startCluster(t, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000' })
  const primary = String(cluster.child.pid)
  await until('READY=1', () => messages().some((fields) => fields.READY === '1'))
  t.match(messages().find((fields) => fields.READY === '1'), { READY: '1', MAINPID: primary, STATUS: '2/2 workers ready; last: started' }, 'READY=1 once every worker listens, naming the primary')
  await until('two watchdog pings', () => messages().filter((fields) => fields.WATCHDOG === '1').length >= 2)

  t.match(await cluster.call('reload'), { ok: true })
  await until('READY=1 after the reload', () => messages().filter((fields) => fields.READY === '1').length >= 2)
  const reloading = messages().findIndex((fields) => fields.RELOADING === '1')
  t.match(messages()[reloading], { RELOADING: '1', MONOTONIC_USEC: /^\d+$/, STATUS: /^2\/2 workers ready; last: rolling reload$/ }, 'RELOADING=1 with MONOTONIC_USEC')
  const readyAgain = messages().findIndex((fields, i) => i > reloading && fields.READY === '1')
  t.ok(readyAgain > reloading, 'then READY=1')
  t.match(messages()[readyAgain], { STATUS: /^2\/2 workers ready; last: reload ok in \d+ ms$/ })
  t.ok(messages().slice(reloading, readyAgain).some((fields) => /worker [01] ready \(pid \d+\)/.test(fields.STATUS ?? '')), 'STATUS lines follow the workers meanwhile')

  cluster.child.kill('SIGTERM')
  t.same(await cluster.exited, { code: 0, signal: null })
  await until('STOPPING=1', () => messages().some((fields) => fields.STOPPING === '1'))
  t.match(messages().find((fields) => fields.STOPPING === '1'), { STATUS: /stopping: draining workers/ })
  t.notOk(messages().slice(messages().findIndex((fields) => fields.STOPPING === '1')).some((fields) => fields.WATCHDOG === '1'), 'no watchdog ping after STOPPING=1')
})

t.test('NOTIFY_SOCKET set but nothing there: one line says so, the cluster serves', async (t) => {
  const cluster = await startCluster(t, { NOTIFY_SOCKET: join(tmpdir(), `fck-no-such-socket-${process.pid}`), LOG_LEVEL: 'warn' })
  await cluster.call('reload')
  t.equal((await get(cluster.port, '/')).status, 200)
  await waitForOutput(cluster.output, 'NOTIFY_SOCKET is set but nothing reaches it')
  t.equal(cluster.output().split('NOTIFY_SOCKET is set but nothing reaches it').length - 1, 1, 'said once')
})

/** Keep-alive load across a full stop and start of the cluster; `restart` does the stop and start. */
async function acrossRestart (port: number, restart: () => Promise<void>): Promise<autocannon.Result> {
  const load = autocannon({ url: `http://127.0.0.1:${port}/`, connections: 20, duration: 6 })
  await sleep(1500)
  await restart()
  return await load
}

t.test('socket activation: a full restart of the cluster refuses, resets and fails nothing', async (t) => {
  const port = await freePort()
  const env = { NODE_ENV: 'development', CLUSTER_WORKERS: '2', LOG_LEVEL: 'warn', FIXTURE_BOOT_OPTIONS: JSON.stringify({ host: '127.0.0.1', healthReportInterval: 0, monitoring: false }) }
  const holder = python(t, 'socket-holder.py', [String(port), '--', process.execPath, fixturePath('cluster.mjs')], env)
  const count = (key: string): number => holder.lines().filter((line) => line[key] !== undefined).length
  const up = async (): Promise<void> => {
    const listening = count('listening')
    holder.child.stdin?.write('start\n')
    await until('the cluster to listen', () => count('listening') > listening, 20_000)
  }
  await until('the held socket', () => count('holding') === 1)
  await up()
  const response = await get(port, '/')
  t.equal(response.status, 200, 'the cluster serves the socket systemd would pass')
  const result = await acrossRestart(port, async () => {
    const exits = count('exited')
    holder.child.stdin?.write('stop\n')
    await until('the cluster to stop', () => count('exited') > exits, 20_000)
    await up()
  })
  t.same(holder.lines().filter((line) => line.exited !== undefined).map((line) => line.exited), [0], 'the first cluster exited 0')
  t.equal(result.errors, 0, 'no connection refused or reset')
  t.equal(result.timeouts, 0, 'no timeout')
  t.equal(result.non2xx, 0, 'no non-2xx')
  t.ok(result.requests.total > 500, `${result.requests.total} requests across the restart, the longest ${result.latency.max} ms`)
  holder.child.stdin?.end()

  // The same restart with the cluster binding the port itself: what users get without it.
  const plainPort = await freePort()
  const plainEnv = { ...env, FIXTURE_BOOT_OPTIONS: JSON.stringify({ port: plainPort, host: '127.0.0.1', healthReportInterval: 0, monitoring: false }) }
  let plain = spawnScript(fixturePath('cluster.mjs'), plainEnv, false)
  await waitForOutput(plain.output, '"listening"')
  const without = await acrossRestart(plainPort, async () => {
    plain.child.kill('SIGTERM')
    await plain.exited
    plain = spawnScript(fixturePath('cluster.mjs'), plainEnv, false)
    await waitForOutput(plain.output, '"listening"')
  })
  t.teardown(() => { if (plain.child.exitCode === null) plain.child.kill('SIGKILL') })
  t.comment(`without a held socket: ${without.errors} connection errors, ${without.non2xx} non-2xx of ${without.requests.total} requests across the same restart`)
  plain.child.kill('SIGTERM')
  await plain.exited
})

t.test('the real systemd-socket-activate runs fastify-cluster start on the socket it passes', async (t) => {
  const dir = await generatedApp(t)
  const port = await freePort()
  const { child, output, exited } = spawnScript(CLI, { NODE_ENV: 'development', CLUSTER_WORKERS: '2', CLUSTER_MONITORING_PORT: 'false' }, false, {
    prefix: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`],
    args: ['start', 'app.js'],
    cwd: dir
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await waitForOutput(output, `Listening on 127.0.0.1:${port}`)
  // It starts the service at the first connection, which waits in the backlog meanwhile.
  const first = await get(port, '/')
  t.equal(first.body, '{"root":true}', 'the connection that started the cluster is served')
  await waitForOutput(output, '"msg":"cluster ready"', 20_000)
  t.match(output(), /socket activation: serving the 1 socket\(s\) systemd passed \(fd 3 on\); port and host are not used/)
  const response = await get(port, '/')
  t.equal(response.body, '{"root":true}')
  t.match(response.headers['x-worker-id'], /^[01]$/)
  child.kill('SIGTERM')
  t.same(await exited, { code: 0, signal: null })
})

t.test('the shipped units: systemd-analyze verify, and timings that fit the kit\'s defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-units-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const unit of ['fastify-app.service', 'fastify-app.socket']) copyFileSync(join(UNITS, unit), join(dir, unit))
  // Verified as installed here: this machine's node, a directory that exists, a user that exists.
  const service = readFileSync(join(dir, 'fastify-app.service'), 'utf8')
  writeFileSync(join(dir, 'fastify-app.service'), service
    .replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `)
    .replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${dir}`)
    .replace(/^User=.*$/m, 'User=root'))
  const verified = await run('systemd-analyze', ['verify', join(dir, 'fastify-app.socket'), join(dir, 'fastify-app.service')]).then(
    ({ stderr }) => stderr, (error: { stderr: string }) => `failed: ${error.stderr}`)
  t.equal(verified.trim(), '', 'systemd-analyze verify finds nothing')

  const value = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(service)?.[1] ?? ''
  const seconds = (name: string): number => Number(value(name).replace(/s$/, ''))
  t.equal(value('Type'), 'notify')
  t.equal(value('NotifyAccess'), 'all', 'systemd-notify, a child of the primary, may speak for it')
  t.equal(value('KillMode'), 'mixed', 'SIGTERM to the primary only, which drains its workers')
  t.ok(seconds('TimeoutStopSec') * 1000 > BOOT_SETTINGS.gracefulTimeout.default + 2000, 'the stop timeout outlasts gracefulTimeout and the primary\'s kill margin')
  t.ok(seconds('TimeoutStartSec') * 1000 > BOOT_SETTINGS.readyTimeout.default, 'the start timeout outlasts readyTimeout')
  t.ok(seconds('WatchdogSec') >= 2, 'a watchdog')
  t.match(value('Environment'), /./)
  t.match(service, /^Requires=fastify-app\.socket$/m)
  t.match(readFileSync(join(UNITS, 'fastify-app.socket'), 'utf8'), /^ListenStream=3000$/m)
})
