import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freePort } from './cluster.js'
import { stopWithTest } from './fixture.js'

/** The configuration the project ships: run with its `server` and `listen` lines set to the test's. */
export const NGINX_CONFIG = fileURLToPath(new URL('../../deploy/nginx/nginx.conf', import.meta.url))

/** nginx with deploy/nginx/nginx.conf in front of `hosts` (address:port each), on a free port of 127.0.0.1; stopped when the test ends. */
export async function startNginx (t: Test, hosts: string[]): Promise<{ port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'fck-nginx-'))
  const port = await freePort()
  let next = 0
  const config = (await readFile(NGINX_CONFIG, 'utf8'))
    .replace(/^(\s*server )\S+:\d+( .*;)$/gm, (_line, head: string, tail: string) => `${head}${hosts[next++] as string}${tail}`)
    // autocannon ignores `Connection: close`: when nginx ends a client's connection after
    // keepalive_requests (1,000 by default) it writes its next request into the closing socket and
    // counts the reset as an error. That is between the load generator and nginx, not the hosts
    // (benchmarks/RESULTS.md, issue 16), so the test lifts the limit; real clients reconnect.
    .replace(/^(\s*listen )80;$/m, `$1127.0.0.1:${port};\n    keepalive_requests 1000000;`)
  if (next !== hosts.length) throw new Error(`deploy/nginx/nginx.conf has ${next} upstream servers, the test ${hosts.length} hosts`)
  await writeFile(join(dir, 'nginx.conf'), config)
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')}; error_log stderr error;`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  stopWithTest(t, child, 'SIGTERM', async () => { await rm(dir, { recursive: true, force: true }) })
  const deadline = Date.now() + 10_000
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start:\n${output}`)
    await sleep(50)
  }
  return { port }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}
