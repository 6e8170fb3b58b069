import { readdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { startFixture, type Fixture, type SpawnOptions } from './fixture.js'

/** Ports this test process has handed out: the OS may pick a port it just freed again. */
const handedOut = new Set<number>()

/**
 * A port that was free a moment ago (the OS picked it), and never one handed out before in this
 * process: two ports asked for one after the other (an app's and its monitoring server's) differ.
 */
export async function freePort (): Promise<number> {
  for (;;) {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    await new Promise((resolve) => server.close(resolve))
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}

export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Polls `check` until it gives something other than undefined or false, and returns that; throws
 * naming `what` after `ms`.
 */
export async function until<T> (what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** Waits up to `ms` for every pid to be gone; returns those still alive. */
export async function waitGone (pids: number[], ms = 5000): Promise<number[]> {
  const deadline = Date.now() + ms
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50)
  return pids.filter(isAlive)
}

export interface ClusterFixture extends Fixture {
  /** The primary's monitoring server (a free port unless the boot options say otherwise). */
  monitoringPort: number
  /** The `{"event":...}` lines the primary printed so far. */
  events: () => Array<Record<string, any>>
  waitForEvent: (predicate: (event: Record<string, any>) => boolean, ms?: number) => Promise<Record<string, any>>
  /** Calls a ClusterHandle method in the primary over IPC. */
  call: (method: 'stats' | 'health' | 'reload' | 'shutdown') => Promise<any>
}

/** Starts test/fixtures/cluster.mjs as a real primary with its workers on a free port. */
export async function startCluster (
  t: Test, env: NodeJS.ProcessEnv = {}, boot: Record<string, unknown> = {}, spawn: SpawnOptions = {}
): Promise<ClusterFixture> {
  const port = await freePort()
  const monitoringPort = await freePort()
  const fixture = await startFixture(t, 'cluster.mjs', {
    env: {
      NODE_ENV: 'development',
      CLUSTER_WORKERS: '2',
      LOG_LEVEL: 'warn',
      FIXTURE_BOOT_OPTIONS: JSON.stringify({
        port, host: '127.0.0.1', healthReportInterval: 0, ...boot, monitoring: { port: monitoringPort, ...boot.monitoring as object }
      }),
      ...env
    },
    ...spawn
  })
  const events = (): Array<Record<string, any>> => fixture.output().split('\n')
    .filter((line) => line.startsWith('{"event"'))
    .map((line) => JSON.parse(line))
  const waitForEvent = async (predicate: (event: Record<string, any>) => boolean, ms = 20_000): Promise<Record<string, any>> => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = events().find(predicate)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no matching event within ${ms} ms; events: ${JSON.stringify(events())}`)
      await sleep(20)
    }
  }
  let calls = 0
  const call = async (method: string): Promise<any> => await new Promise((resolve, reject) => {
    const id = ++calls
    const onMessage = (message: any): void => {
      if (message?.id !== id) return
      fixture.child.off('message', onMessage)
      if (message.error !== undefined) reject(Object.assign(new Error(message.error.message), message.error))
      else resolve(message.value)
    }
    fixture.child.on('message', onMessage)
    fixture.child.send({ id, call: method })
  })
  return { ...fixture, monitoringPort, events, waitForEvent, call }
}

/** Processes whose environment holds `FIXTURE_RUN=<marker>`: a cluster's primary and workers alike. */
export function pidsWithMarker (marker: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`FIXTURE_RUN=${marker}`)) pids.push(Number(entry))
    } catch {}
  }
  return pids
}

/** Fields 3 on of /proc/PID/stat: the state (R running, Z zombie...), the parent pid, ... */
export function procStat (pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  // The command name (field 2) is in parentheses and may hold spaces: read after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** The live child processes of `pid`. */
export function childrenOf (pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const [state, ppid] = procStat(entry)
      if (Number(ppid) === pid && state !== 'Z') children.push(Number(entry))
    } catch {}
  }
  return children.sort((a, b) => a - b)
}

/**
 * Every process the primary runs is one `/cluster/stats` lists: a slot's worker, or the orphan
 * guard. Waits (up to `ms`) for retiring workers to finish, then returns both lists to compare.
 */
export async function processesMatchStats (cluster: ClusterFixture, ms = 15_000): Promise<{ children: number[], listed: number[] }> {
  const deadline = Date.now() + ms
  for (;;) {
    const stats = await cluster.call('stats')
    const listed = [...stats.workers.map((worker: any) => worker.pid), stats.primary.guard].filter((pid) => pid !== null).sort((a: number, b: number) => a - b)
    const children = childrenOf(cluster.child.pid as number)
    if (JSON.stringify(children) === JSON.stringify(listed) || Date.now() > deadline) return { children, listed }
    await sleep(100)
  }
}
