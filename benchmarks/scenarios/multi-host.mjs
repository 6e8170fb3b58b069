import { once } from 'node:events'
import autocannon from 'autocannon'
import { fmt, freePort, interleave, measure, median, startHaproxy, startServer, treeCpuMs } from '../lib.mjs'

// Several hosts behind HAProxy (deploy/haproxy/haproxy.cfg as shipped), all on this machine: each
// "host" is a cluster of 2 workers on its own loopback address. Two questions: what the balancer
// costs and whether more hosts add throughput here (they cannot on 2 cores: every host, HAProxy
// and autocannon share them), and how many requests a rolling deploy of 3 hosts fails, the kit
// against the same hosts running a hand-written node:cluster script whose workers call
// fastify.close() on SIGTERM (plain-cluster.mjs) — what users write today.
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
const CONNECTIONS = 100
// Above the shipped configuration's time to mark a host down (README, "Several hosts").
const KIT = { script: 'boot.mjs', env: { PLUGIN_OPTIONS: JSON.stringify({ shutdownDelay: 2000 }), CLUSTER_MONITORING_PORT: 'false', LOG_LEVEL: 'warn' } }
const BARE = { script: 'plain-cluster.mjs', env: {} }

async function startHost (kind, i, port) {
  return await startServer(kind.script, [], { env: { ...kind.env, HOST: ADDRESSES[i], PORT: String(port), CLUSTER_WORKERS: '2' }, cpus: '0-1' })
}

async function startBed (kind, count, retries = true) {
  const port = await freePort()
  const hosts = await Promise.all(Array.from({ length: count }, async (_, i) => await startHost(kind, i, port)))
  const lb = await startHaproxy(hosts.map((_, i) => `${ADDRESSES[i]}:${port}`), { retries })
  for (const server of ['host1', 'host2', 'host3']) await lb.waitUp(server)
  return {
    lb,
    hosts,
    port,
    async stop () { await Promise.all([lb.stop(), ...hosts.map(async (host) => await host.stop())]) }
  }
}

/** req/s through the balancer to `count` kit hosts, and the balancer's share of the CPU spent. */
async function throughput (count, { duration, warmup }) {
  const bed = await startBed(KIT, count)
  try {
    await measure(bed.lb.port, { connections: CONNECTIONS, duration: warmup })
    const cpu = async () => Promise.all([treeCpuMs(bed.lb.pid), ...bed.hosts.map(async (host) => await treeCpuMs(host.child.pid))])
    const before = await cpu()
    const run = await measure(bed.lb.port, { connections: CONNECTIONS, duration })
    const spent = (await cpu()).map((ms, i) => ms - before[i])
    return { ...run, lbShare: spent[0] / spent.reduce((a, b) => a + b, 0) }
  } finally {
    await bed.stop()
  }
}

/** Failed requests while each of 3 hosts in turn gets SIGTERM, is started again and is UP again. */
async function rollingDeploy ({ kind, retries }) {
  const bed = await startBed(kind, 3, retries)
  try {
    let done
    const finished = new Promise((resolve) => { done = resolve })
    const load = autocannon({ url: `http://127.0.0.1:${bed.lb.port}/`, connections: CONNECTIONS, duration: 600 }, (_error, result) => done(result))
    const started = Date.now()
    for (let i = 0; i < 3; i++) {
      // SIGTERM to the host's main process only, as Kubernetes and `docker stop` send it.
      const { child } = bed.hosts[i]
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
      bed.hosts[i] = await startHost(kind, i, bed.port)
      await bed.lb.waitUp(`host${i + 1}`)
    }
    const deployMs = Date.now() - started
    load.stop()
    const result = await finished
    return { failed: result.errors + result.timeouts + result.non2xx, total: result.requests.total, deployMs }
  } finally {
    await bed.stop()
  }
}

export default {
  name: 'multi-host',
  description: `Hosts of 2 workers on 127.0.0.2–4 behind HAProxy (deploy/haproxy/haproxy.cfg), ${CONNECTIONS} keep-alive connections through it; all on this machine`,
  async run (scenario, settings) {
    const counts = [1, 2, 3]
    const runs = Object.fromEntries(counts.map((count) => [count, []]))
    for (const order of interleave(counts, settings.rounds)) {
      for (const count of order) {
        const run = await throughput(count, settings)
        runs[count].push(run)
        console.log(`  multi-host ${count} host(s): ${fmt(run.rps)} req/s, p99 ${run.p99} ms, HAProxy ${fmt(run.lbShare * 100, 1)}% of the CPU, errors ${run.errors}`)
      }
    }
    // With the shipped retries, and without (retry-on none): what the hosts do on their own.
    const kinds = {
      'fastify-cluster-kit (shutdownDelay 2000)': { kind: KIT, retries: true },
      'node:cluster + fastify.close() on SIGTERM': { kind: BARE, retries: true },
      'fastify-cluster-kit, HAProxy without retries': { kind: KIT, retries: false },
      'node:cluster + fastify.close(), HAProxy without retries': { kind: BARE, retries: false }
    }
    const deploys = Object.fromEntries(Object.keys(kinds).map((name) => [name, []]))
    for (const order of interleave(Object.keys(kinds), settings.rounds)) {
      for (const name of order) {
        const run = await rollingDeploy(kinds[name])
        deploys[name].push(run)
        console.log(`  multi-host rolling deploy, ${name}: ${run.failed} failed of ${run.total}, ${fmt(run.deployMs)} ms`)
      }
    }
    const one = median(runs[1].map((run) => run.rps))
    const lines = [
      `${scenario.description}. ${settings.rounds} interleaved rounds; throughput over ${settings.duration} s after ${settings.warmup} s of warm-up.`,
      '',
      '| hosts | req/s (median) | min–max | p99 ms | vs 1 host | HAProxy share of the CPU spent (median) | errors |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...counts.map((count) => {
        const list = runs[count]
        const rps = list.map((run) => run.rps)
        return `| ${count} | ${fmt(median(rps))} | ${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))} | ${median(list.map((run) => run.p99))} | ` +
          `${fmt(median(rps) / one, 2)} | ${fmt(median(list.map((run) => run.lbShare)) * 100, 1)}% | ${list.reduce((sum, run) => sum + run.errors, 0)} |`
      }),
      '',
      '| rolling deploy of 3 hosts | failed requests per deploy (median) | min–max | total failed | requests per deploy (median) | deploy ms (median) |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(deploys).map(([name, list]) => {
        const failed = list.map((run) => run.failed)
        return `| ${name} | ${median(failed)} | ${Math.min(...failed)}–${Math.max(...failed)} | ${failed.reduce((a, b) => a + b, 0)} | ${fmt(median(list.map((run) => run.total)))} | ${fmt(median(list.map((run) => run.deployMs)))} |`
      })
    ]
    const kitFailed = deploys[Object.keys(kinds)[0]].reduce((sum, run) => sum + run.failed, 0)
    lines.push('', `- the kit behind the shipped configuration: ${kitFailed} failed requests in ${settings.rounds} rolling deploys: ${kitFailed === 0 ? 'meets' : 'MISSES'} the goal (0)`)
    return lines.join('\n')
  }
}
