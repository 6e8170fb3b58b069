import { spawn } from 'node:child_process'
import { once } from 'node:events'
import autocannon from 'autocannon'
import { fmt, freePort, interleavedRuns, median, sleep, startServer } from '../lib.mjs'

// A full restart of the cluster (primary and workers stopped with SIGTERM, then started again: an
// upgrade of the kit or of Node, a new CLUSTER_WORKERS) under keep-alive load: with the listening
// socket held by a process outside the cluster, as a systemd socket unit holds it (socket
// activation: LISTEN_FDS, fd 3), and without (the cluster binds the port itself, as today).
const LOAD = { connections: 50, duration: 10 }
const RESTART_AT = 2000
const ENV = { CLUSTER_WORKERS: '2', LOG_LEVEL: 'warn' }
const holderScript = new URL('../../test/helpers/socket-holder.py', import.meta.url).pathname
const bootScript = new URL('../servers/boot.mjs', import.meta.url).pathname

/** Lines of JSON a process printed, as they come. */
function follow (child) {
  let text = ''
  child.stdout.on('data', (chunk) => { text += chunk })
  return () => text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
}

async function until (lines, test) {
  while (!lines().some(test)) await sleep(20)
}

const variants = {
  'held socket (socket activation)': {
    async start (port) {
      const holder = spawn('python3', [holderScript, String(port), '--', process.execPath, bootScript], {
        env: { ...process.env, ...ENV }, stdio: ['pipe', 'pipe', 'inherit']
      })
      const lines = follow(holder)
      await until(lines, (line) => line.holding === port)
      const up = async () => {
        const listening = lines().filter((line) => line.listening !== undefined).length
        holder.stdin.write('start\n')
        await until(() => lines().filter((line) => line.listening !== undefined), (_line, i) => i >= listening)
      }
      await up()
      return {
        async restart () {
          const exits = lines().filter((line) => line.exited !== undefined).length
          holder.stdin.write('stop\n')
          await until(() => lines().filter((line) => line.exited !== undefined), (_line, i) => i >= exits)
          await up()
        },
        async stop () {
          holder.stdin.end()
          await once(holder, 'exit')
        }
      }
    }
  },
  'no held socket (the cluster binds the port)': {
    async start (port) {
      let server = await startServer('boot.mjs', [], { env: { ...ENV, PORT: String(port) }, cpus: '0-1' })
      return {
        async restart () {
          await server.stop()
          server = await startServer('boot.mjs', [], { env: { ...ENV, PORT: String(port) }, cpus: '0-1' })
        },
        async stop () { await server.stop() }
      }
    }
  }
}

async function round (variant) {
  const port = await freePort()
  const cluster = await variants[variant].start(port)
  try {
    const load = autocannon({ url: `http://127.0.0.1:${port}/`, ...LOAD })
    await sleep(RESTART_AT)
    const started = Date.now()
    await cluster.restart()
    const restartMs = Date.now() - started
    const result = await load
    return { failed: result.errors + result.timeouts + result.non2xx, total: result.requests.total, longest: result.latency.max, restartMs }
  } finally {
    await cluster.stop()
  }
}

export default {
  name: 'restart',
  description: `A full stop and start of a 2-worker cluster (SIGTERM, then a new primary) at ${RESTART_AT / 1000} s under autocannon -c ${LOAD.connections} (keep-alive), ${LOAD.duration} s`,
  async run (scenario, { rounds }) {
    const runs = await interleavedRuns(Object.keys(variants), rounds, round,
      (name, run) => `restart ${name}: ${run.failed} failed of ${run.total}, longest request ${run.longest} ms, restart took ${run.restartMs} ms`)
    const lines = [
      `${scenario.description}. ${rounds} interleaved rounds. Failed: socket errors (refused, reset), timeouts and non-2xx answers.`,
      '',
      '| variant | failed requests per restart (median) | min–max | longest request ms (median) | max | restart ms (median) | requests per run (median) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'
    ]
    for (const [name, list] of Object.entries(runs)) {
      const failed = list.map((run) => run.failed)
      const longest = list.map((run) => run.longest)
      lines.push(`| ${name} | ${median(failed)} | ${Math.min(...failed)}–${Math.max(...failed)} | ${fmt(median(longest))} | ${fmt(Math.max(...longest))} | ` +
        `${fmt(median(list.map((run) => run.restartMs)))} | ${fmt(median(list.map((run) => run.total)))} |`)
    }
    const held = Object.values(runs)[0].reduce((sum, run) => sum + run.failed, 0)
    lines.push('', `- held socket: ${held} failed requests in ${rounds} full restarts: ${held === 0 ? 'meets' : 'MISSES'} the goal (0 failed)`)
    return lines.join('\n')
  }
}
