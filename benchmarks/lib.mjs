// The benchmark runner's building blocks: servers in their own processes, autocannon driven
// programmatically, interleaved rounds, medians, ratios, machine facts, RESULTS.md.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile } from 'node:fs/promises'
import os from 'node:os'
import autocannon from 'autocannon'

const here = new URL('.', import.meta.url)
export const RESULTS = new URL('RESULTS.md', here)

/** Pins a process to one core so the load generator and the server do not fight over it. */
function pinned (command, args, cpu) {
  return os.availableParallelism() > 1 ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args]
}

/**
 * Starts a server script from benchmarks/servers/ in its own process (on the last core, away from
 * autocannon) and resolves once it prints `{"listening":port}`.
 */
export async function startServer (script, args = [], { env = {}, cpus } = {}) {
  const cpuList = cpus ?? String(os.availableParallelism() - 1)
  const [command, argv] = pinned(process.execPath, [new URL(`servers/${script}`, here).pathname, ...args], cpuList)
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  let text = ''
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
