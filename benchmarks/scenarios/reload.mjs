import autocannon from 'autocannon'
import { fmt, freePort, interleavedRuns, median, sleep, startPm2, startServer } from '../lib.mjs'

// Failed requests while every worker is replaced under load: bootCluster's rolling reload vs
// `pm2 reload`, with a bare Fastify app that closes on SIGINT (what PM2 users write) and with the
// same app plus clusterPlugin under PM2.
const LOAD = { connections: 50, duration: 8 }

const variants = {
  bootCluster: {
    start: async () => await startServer('boot.mjs', [], { env: { PORT: String(await freePort()), CLUSTER_WORKERS: '2', LOG_LEVEL: 'warn' }, cpus: '0-1' }),
    async reload (server) {
      const done = server.lines().filter((line) => line.event === 'reload:done').length
      process.kill(server.child.pid, 'SIGHUP')
      while (server.lines().filter((line) => line.event === 'reload:done').length === done) await sleep(20)
    }
  },
  'pm2 reload, bare Fastify': {
    start: async () => await startPm2('hello.mjs', ['bare'], 2),
    reload: async (server) => await server.pm2('reload', 'bench')
  },
  'pm2 reload, Fastify + clusterPlugin': {
    start: async () => await startPm2('hello.mjs', ['plugin'], 2),
    reload: async (server) => await server.pm2('reload', 'bench')
  }
}

async function once (variant) {
  const server = await variants[variant].start()
  try {
    const load = autocannon({ url: `http://127.0.0.1:${server.port}/`, ...LOAD })
    await sleep(2000)
    const started = Date.now()
    await variants[variant].reload(server)
    const reloadMs = Date.now() - started
    const result = await load
    return { failed: result.errors + result.timeouts + result.non2xx, total: result.requests.total, reloadMs }
  } finally {
    await server.stop()
  }
}

export default {
  name: 'reload',
  description: `Failed requests (errors + timeouts + non-2xx) during a rolling reload of 2 workers under autocannon -c ${LOAD.connections}, ${LOAD.duration} s, reload at 2 s`,
  async run (scenario, { rounds }) {
    const runs = await interleavedRuns(Object.keys(variants), rounds, once, (name, run) => `reload ${name}: ${run.failed} failed of ${run.total}, reload took ${run.reloadMs} ms`)
    const lines = [
      `${scenario.description}. ${rounds} interleaved rounds.`,
      '',
      '| variant | failed requests per reload (median) | min–max | total failed | requests per run (median) | reload duration ms (median) |',
      '| --- | ---: | ---: | ---: | ---: | ---: |'
    ]
    for (const [name, list] of Object.entries(runs)) {
      const failed = list.map((run) => run.failed)
      lines.push(`| ${name} | ${median(failed)} | ${Math.min(...failed)}–${Math.max(...failed)} | ${failed.reduce((a, b) => a + b, 0)} | ` +
        `${fmt(median(list.map((run) => run.total)))} | ${fmt(median(list.map((run) => run.reloadMs)))} |`)
    }
    const bootFailed = runs.bootCluster.reduce((sum, run) => sum + run.failed, 0)
    lines.push('', `- bootCluster: ${bootFailed} failed requests in ${rounds} reloads: ${bootFailed === 0 ? 'meets' : 'MISSES'} the goal (0 failed requests on reload)`)
    return lines.join('\n')
  }
}
