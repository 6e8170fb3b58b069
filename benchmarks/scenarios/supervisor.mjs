import { fmt, freePort, median, rssOf, sleep, startPm2, startServer } from '../lib.mjs'

// The primary's own costs: from `node app` to every worker listening; from kill -9 of a stable
// worker to its replacement listening; the primary's RSS next to the PM2 daemon's for 2 workers,
// with the app loaded inside the factory or at the top of the entry file, monitoring on or off.
const WORKERS = 2
const MB = 2 ** 20

async function waitFor (server, predicate) {
  for (;;) {
    const found = server.lines().find(predicate)
    if (found !== undefined) return found
    await sleep(5)
  }
}

async function once (appImport, monitoring = '0') {
  const started = Date.now()
  const server = await startServer('boot.mjs', [], {
    env: {
      PORT: String(await freePort()),
      CLUSTER_WORKERS: String(WORKERS),
      LOG_LEVEL: 'warn',
      RESTART_WINDOW: '1000',
      APP_IMPORT: appImport,
      CLUSTER_MONITORING_PORT: monitoring
    },
    cpus: '0-1'
  })
  try {
    const startMs = Date.now() - started
    await sleep(1500) // past restartWindow: the workers count as stable
    const primaryRss = await rssOf(server.child.pid)
    const victim = await fetch(`http://127.0.0.1:${server.port}/`).then((response) => Number(response.headers.get('x-worker-pid')))
    const killedAt = Date.now()
    process.kill(victim, 'SIGKILL')
    const ready = await waitFor(server, (line) => line.event === 'worker:ready' && line.at >= killedAt)
    return { startMs, replaceMs: ready.at - killedAt, primaryRss }
  } finally {
    await server.stop()
  }
}

export default {
  name: 'supervisor',
  description: `bootCluster with ${WORKERS} workers: start to all ready, kill -9 of a stable worker to its replacement ready, primary RSS; PM2 daemon RSS with the same ${WORKERS} workers`,
  async run (scenario, { rounds }) {
    const runs = []
    const leanRss = []
    const eagerRss = []
    for (let round = 0; round < rounds; round++) {
      const run = await once('lazy')
      runs.push(run)
      const lean = await once('lazy', 'false')
      leanRss.push(lean.primaryRss)
      const eager = await once('eager')
      eagerRss.push(eager.primaryRss)
      console.log(`  supervisor: start ${run.startMs} ms, replacement ${run.replaceMs} ms, primary rss ${fmt(run.primaryRss / MB, 1)} MB ` +
        `(${fmt(lean.primaryRss / MB, 1)} MB without monitoring, ${fmt(eager.primaryRss / MB, 1)} MB when the entry file imports Fastify itself)`)
    }
    const pm2Rss = []
    for (let round = 0; round < Math.min(rounds, 3); round++) {
      const pm2 = await startPm2('hello.mjs', ['bare'], WORKERS)
      try {
        await sleep(1500)
        pm2Rss.push(await rssOf(pm2.daemonPid))
      } finally {
        await pm2.stop()
      }
    }
    const start = median(runs.map((run) => run.startMs))
    const replace = median(runs.map((run) => run.replaceMs))
    const range = (values, scale = 1, digits = 0) => `${fmt(Math.min(...values) / scale, digits)}–${fmt(Math.max(...values) / scale, digits)}`
    const rssRow = (what, values) =>
      `| bootCluster primary RSS, ${what} | ${fmt(median(values) / MB, 1)} MB | ${range(values, MB, 1)} MB | < 50 MB: ${median(values) < 50 * MB ? 'meets' : 'MISSES'} |`
    return [
      `${scenario.description}. ${rounds} runs (PM2: ${pm2Rss.length}), medians.`,
      '',
      '| measure | median | min–max | goal |',
      '| --- | ---: | ---: | --- |',
      `| start (spawn of the primary) to all ${WORKERS} workers listening | ${fmt(start)} ms | ${range(runs.map((run) => run.startMs))} ms | < 1000 ms: ${start < 1000 ? 'meets' : 'MISSES'} |`,
      `| kill -9 of a stable worker to replacement listening | ${fmt(replace)} ms | ${range(runs.map((run) => run.replaceMs))} ms | < 500 ms: ${replace < 500 ? 'meets' : 'MISSES'} |`,
      rssRow('app imported inside the factory, monitoring off', leanRss),
      rssRow('app imported inside the factory, monitoring on (default)', runs.map((run) => run.primaryRss)),
      rssRow('entry file imports Fastify at the top, monitoring on', eagerRss),
      `| PM2 daemon (God) RSS, same ${WORKERS} workers | ${fmt(median(pm2Rss) / MB, 1)} MB | ${range(pm2Rss, MB, 1)} MB | (comparison) |`
    ].join('\n')
  }
}
