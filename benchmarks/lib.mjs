// The benchmark runner's building blocks: servers in their own processes, autocannon driven
// programmatically, interleaved rounds, medians, ratios, machine facts, RESULTS.md.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import autocannon from 'autocannon'

const run = promisify(execFile)

const here = new URL('.', import.meta.url)
export const RESULTS = new URL('RESULTS.md', here)

/** Pins a process to one core so the load generator and the server do not fight over it. */
function pinned (command, args, cpu) {
  return os.availableParallelism() > 1 ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args]
}

/**
 * Starts a server script from benchmarks/servers/ in its own process (by default on the last core,
 * away from autocannon; `cpus: '0-1'` for a cluster) and resolves once it prints `{"listening":port}`.
 * `lines()` returns every JSON line it printed so far.
 */
export async function startServer (script, args = [], { env = {}, cpus } = {}) {
  const cpuList = cpus ?? String(os.availableParallelism() - 1)
  const [command, argv] = pinned(process.execPath, [new URL(`servers/${script}`, here).pathname, ...args], cpuList)
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  let text = ''
  const lines = () => text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      text += chunk
      const match = /\{"listening":(\d+)\}/.exec(text)
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`${script} ${args.join(' ')} exited with ${code} before listening`)))
  })
  return {
    port,
    child,
    lines,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      process.kill(-child.pid, 'SIGTERM')
      const timer = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** One autocannon run against 127.0.0.1:port; returns the numbers the tables use. */
export async function measure (port, { path = '/', connections = 50, duration = 5, pipelining = 1 } = {}) {
  const result = await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections, duration, pipelining })
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total
  }
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** ABBA ordering: each round reverses the previous one, so drift (heat, JIT, noise) cancels. */
export function interleave (names, rounds) {
  return Array.from({ length: rounds }, (_, round) => (round % 2 === 0 ? names : [...names].reverse()))
}

export function machineFacts () {
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    node: process.version,
    cores: os.availableParallelism(),
    cpu: cpus[0]?.model ?? 'unknown',
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${os.type()} ${os.release()}`
  }
}

export function factsLine (facts) {
  return `${facts.date} · Node ${facts.node} · ${facts.cores} cores (${facts.cpu}) · ${facts.memory} · ${facts.os}`
}

export async function appendResults (markdown) {
  await appendFile(RESULTS, `${markdown.trim()}\n\n`)
}

export const fmt = (value, digits = 0) => Number(value).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

/** A port that was free a moment ago. */
export async function freePort () {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * CPU time (user + system, ms) of a process and all its descendants, from /proc: the server side
 * of a measurement. On 2 cores autocannon can be the bottleneck (the server then idles part of
 * the time), and req/s partly measures the client; CPU per request measures the server alone.
 */
export async function treeCpuMs (pid) {
  const stats = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const fields = (await readFile(`/proc/${entry}/stat`, 'utf8')).split(') ')[1].split(' ')
      stats.push({ pid: Number(entry), ppid: Number(fields[1]), ms: (Number(fields[11]) + Number(fields[12])) * 10 })
    } catch {} // gone meanwhile
  }
  const tree = new Set([pid])
  let grew = true
  while (grew) {
    grew = false
    for (const stat of stats) if (!tree.has(stat.pid) && tree.has(stat.ppid)) { tree.add(stat.pid); grew = true }
  }
  return stats.filter((stat) => tree.has(stat.pid)).reduce((sum, stat) => sum + stat.ms, 0)
}

/** Resident memory of a process in bytes, from /proc. */
export async function rssOf (pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) * 1024
}

/**
 * Runs `once(variant)` for every variant, in `rounds` interleaved rounds (ABBA), printing each run
 * as `describe(variant, run)` says; resolves with the runs by variant.
 */
export async function interleavedRuns (names, rounds, once, describe) {
  const runs = Object.fromEntries(names.map((name) => [name, []]))
  for (const order of interleave(names, rounds)) {
    for (const name of order) {
      const run = await once(name)
      runs[name].push(run)
      console.log(`  ${describe(name, run)}`)
    }
  }
  return runs
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves once 127.0.0.1:port answers GET / with 200 from `distinct` different pids (X-Worker-PID or the socket). */
export async function waitAnswering (port, ms = 30_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`)
      if (response.status === 200) return
    } catch {}
    await sleep(50)
  }
  throw new Error(`nothing answered on port ${port} within ${ms} ms`)
}

/**
 * Runs `script` from servers/ under a private PM2 (own PM2_HOME and daemon) in cluster mode.
 * `pm2(...args)` runs a PM2 command against it; `stop()` kills the daemon and everything it started.
 */
export async function startPm2 (script, args, instances, env = {}) {
  const home = await mkdtemp(join(os.tmpdir(), 'fck-bench-pm2-'))
  const port = await freePort()
  const pm2Bin = createRequire(import.meta.url).resolve('pm2/bin/pm2')
  const pm2 = async (...argv) => await run(process.execPath, [pm2Bin, ...argv], { env: { ...process.env, PM2_HOME: home, NODE_OPTIONS: '' } })
  const ecosystem = join(home, 'ecosystem.json')
  await writeFile(ecosystem, JSON.stringify({
    apps: [{
      name: 'bench',
      script: new URL(`servers/${script}`, here).pathname,
      args,
      exec_mode: 'cluster',
      instances,
      wait_ready: true,
      listen_timeout: 10_000,
      kill_timeout: 10_000,
      env: { PORT: String(port), ...env }
    }]
  }))
  await pm2('start', ecosystem)
  await waitAnswering(port)
  const daemonPid = Number(await readFile(join(home, 'pm2.pid'), 'utf8'))
  return {
    port,
    daemonPid,
    pm2,
    async stop () {
      await pm2('kill').catch(() => {})
      await rm(home, { recursive: true, force: true })
    }
  }
}

async function answersPing (port) {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => { socket.destroy(); resolve(String(data).startsWith('+PONG')) })
    socket.once('error', () => resolve(false))
  })
}

/**
 * A private redis-server on a free port (nothing on disk) on `cpus`; `cpuMs()` is its CPU time
 * so far (`INFO cpu`), so a benchmark can show what a saving in the app costs Redis.
 */
export async function startRedis (cpus = '0-1') {
  const port = await freePort()
  const child = spawn('taskset', ['-c', cpus, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  while (!(await answersPing(port))) await sleep(50)
  return {
    url: `redis://127.0.0.1:${port}`,
    async cpuMs () {
      const info = await new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write('INFO cpu\r\n'))
        let text = ''
        socket.on('data', (data) => { text += data; if (/used_cpu_user:[\d.]+\r\n/.test(text)) { socket.destroy(); resolve(text) } })
        socket.once('error', reject)
      })
      const seconds = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1])
      return (seconds('used_cpu_sys') + seconds('used_cpu_user')) * 1000
    },
    async stop () { child.kill('SIGTERM'); await once(child, 'exit') }
  }
}

/**
 * HAProxy with the shipped deploy/haproxy/haproxy.cfg in front of `hosts` (address:port; fewer than
 * its three servers repeat), on a free port of 127.0.0.1, on `cpus`; with `retries: false` its
 * retry-on and redispatch lines are turned off (a balancer that does not retry). `waitUp(server)`
 * waits for a server's check to say UP (runtime socket); `stop()` ends it.
 */
export async function startHaproxy (hosts, { cpus = '0-1', retries = true } = {}) {
  const dir = await mkdtemp(join(os.tmpdir(), 'fck-bench-haproxy-'))
  const socket = join(dir, 'admin.sock')
  await writeFile(join(dir, 'runtime.cfg'), `global\n  stats socket ${socket} level admin\n`)
  const port = await freePort()
  const env = { ...process.env, LB_BIND: `127.0.0.1:${port}` }
  for (let i = 0; i < 3; i++) env[`HOST${i + 1}`] = hosts[i % hosts.length]
  let config = new URL('../deploy/haproxy/haproxy.cfg', here).pathname
  if (!retries) {
    const text = (await readFile(config, 'utf8')).replace(/^(\s*)retry-on .*$/m, '$1retry-on none').replace(/^(\s*)option redispatch.*$/m, '$1no option redispatch')
    config = join(dir, 'haproxy.cfg')
    await writeFile(config, text)
  }
  const child = spawn('taskset', ['-c', cpus, 'haproxy', '-db', '-f', config, '-f', join(dir, 'runtime.cfg')], { env, stdio: 'ignore' })
  const show = async () => await new Promise((resolve, reject) => {
    const connection = net.connect(socket, () => connection.end('show stat\n'))
    let text = ''
    connection.on('data', (chunk) => { text += chunk })
    connection.on('end', () => resolve(text))
    connection.on('error', reject)
  })
  const status = async (server) => {
    const [header, ...rows] = String(await show()).trim().split('\n')
    const columns = header.replace(/^# /, '').split(',')
    const row = rows.map((line) => line.split(',')).find((fields) => fields[0] === 'hosts' && fields[1] === server)
    return row?.[columns.indexOf('status')] ?? 'unknown'
  }
  for (;;) {
    try { await show(); break } catch { if (child.exitCode !== null) throw new Error('haproxy did not start'); await sleep(50) }
  }
  return {
    port,
    pid: child.pid,
    async waitUp (server) { while (!(await status(server)).startsWith('UP')) await sleep(50) },
    async stop () {
      if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit') }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
