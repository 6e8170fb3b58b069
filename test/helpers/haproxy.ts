import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freePort } from './cluster.js'
import { stopWithTest } from './fixture.js'

/** The configuration the project ships, run as it is. */
export const HAPROXY_CONFIG = fileURLToPath(new URL('../../deploy/haproxy/haproxy.cfg', import.meta.url))

/** The hosts' shutdownDelay behind it (ms): the README's rule says above `markedDownWithin`. */
export const SHUTDOWN_DELAY = 2000

const ms = (value: string): number => /ms$/.test(value) ? Number.parseFloat(value) : /s$/.test(value) ? Number.parseFloat(value) * 1000 : Number(value)

/**
 * From an HAProxy configuration's text: how long a server that starts failing its check may still
 * get requests (inter + (fall - 1) x fastinter + timeout check), and how long HAProxy keeps an idle
 * connection to it for reuse (pool-purge-delay, 5 s unless set).
 */
export function checkTimings (config: string): { markedDownWithin: number, idleReuse: number } {
  const server = /^\s*default-server\s+(.*)$/m.exec(config)?.[1] ?? ''
  const option = (name: string): string | undefined => new RegExp(`\\b${name}\\s+(\\S+)`).exec(server)?.[1]
  const inter = ms(option('inter') ?? '2s')
  const fall = Number(option('fall') ?? 3)
  const fastinter = ms(option('fastinter') ?? String(inter))
  const check = ms(/^\s*timeout check\s+(\S+)/m.exec(config)?.[1] ?? String(inter))
  const purge = /^\s*pool-purge-delay\s+(\S+)/m.exec(config)?.[1]
  return { markedDownWithin: inter + (fall - 1) * fastinter + check, idleReuse: purge === undefined ? 5000 : ms(purge) }
}

export interface LoadBalancer {
  port: number
  /** Each server's status as HAProxy sees it (UP, DOWN, `UP 1/2`...), from its runtime API. */
  states: () => Promise<Record<string, string>>
  /** Waits (up to `ms`) until HAProxy's status of `server` starts with `status`. */
  waitFor: (server: string, status: 'UP' | 'DOWN', ms?: number) => Promise<void>
}

/**
 * HAProxy with deploy/haproxy/haproxy.cfg in front of `hosts` (address:port each, named host1..),
 * listening on a free port of 127.0.0.1, plus a runtime socket the test reads servers' states
 * from; stopped when the test ends.
 */
export async function startHaproxy (t: Test, hosts: string[]): Promise<LoadBalancer> {
  const dir = await mkdtemp(join(tmpdir(), 'fck-haproxy-'))
  const socket = join(dir, 'admin.sock')
  await writeFile(join(dir, 'runtime.cfg'), `global\n  stats socket ${socket} mode 600 level admin\n`)
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, LB_BIND: `127.0.0.1:${port}` }
  hosts.forEach((host, i) => { env[`HOST${i + 1}`] = host })
  const child = spawn('haproxy', ['-db', '-f', HAPROXY_CONFIG, '-f', join(dir, 'runtime.cfg')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  stopWithTest(t, child, 'SIGKILL', async () => { await rm(dir, { recursive: true, force: true }) })

  const ask = async (command: string): Promise<string> => await new Promise((resolve, reject) => {
    const connection = net.connect(socket, () => connection.end(`${command}\n`))
    let text = ''
    connection.on('data', (chunk) => { text += chunk.toString() })
    connection.on('end', () => resolve(text))
    connection.on('error', reject)
  })
  const states = async (): Promise<Record<string, string>> => {
    const [header = '', ...rows] = (await ask('show stat')).trim().split('\n')
    const columns = header.replace(/^# /, '').split(',')
    const at = (name: string): number => columns.indexOf(name)
    const result: Record<string, string> = {}
    for (const row of rows) {
      const fields = row.split(',')
      if (fields[at('pxname')] === 'hosts' && /^host\d+$/.test(fields[at('svname')] ?? '')) result[fields[at('svname')] as string] = fields[at('status')] ?? ''
    }
    return result
  }
  const waitFor = async (server: string, status: 'UP' | 'DOWN', ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms
    for (;;) {
      const seen = (await states())[server] ?? ''
      if (seen === status || seen.startsWith(`${status} `)) return
      if (Date.now() > deadline) throw new Error(`HAProxy still sees ${server} as ${seen}, not ${status}, after ${ms} ms`)
      await sleep(50)
    }
  }

  // Ready once its runtime socket answers; every server starts UP until its first check.
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await states()
      break
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy did not start: ${(error as Error).message}\n${output}`)
      await sleep(50)
    }
  }
  return { port, states, waitFor }
}
