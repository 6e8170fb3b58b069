import { readFile } from 'node:fs/promises'
import { fmt, freePort, median, rssOf, sleep, startServer } from '../lib.mjs'

// What the monitoring server's /metrics costs as the cluster grows: one scrape asks every worker
// for its registry over IPC and combines the answers. Per worker count: /metrics latency over
// sequential scrapes (as Prometheus does them), the primary's CPU while idle (heartbeats only) and
// its RSS after the scrapes.
const COUNTS = [1, 2, 4, 8, 16]
const SCRAPES = 100
const IDLE_MS = 5000
const MB = 2 ** 20

/** CPU time (user + system) of a process in ms, from /proc (clock ticks of 10 ms). */
async function cpuMs (pid) {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

async function once (workers) {
  const monitoring = await freePort()
  const server = await startServer('boot.mjs', [], {
    env: { PORT: String(await freePort()), CLUSTER_WORKERS: String(workers), LOG_LEVEL: 'warn', CLUSTER_MONITORING_PORT: String(monitoring) },
    cpus: '0-1'
  })
  try {
    for (let i = 0; i < workers * 20; i++) await fetch(`http://127.0.0.1:${server.port}/`).then((response) => response.text())
    await sleep(1500) // every worker has sent a heartbeat
    const before = await cpuMs(server.child.pid)
    await sleep(IDLE_MS)
    const idleCpu = (await cpuMs(server.child.pid) - before) / IDLE_MS * 100
    const latencies = []
    let bytes = 0
    for (let i = 0; i < SCRAPES; i++) {
      const started = performance.now()
      const response = await fetch(`http://127.0.0.1:${monitoring}/metrics`)
      const text = await response.text()
      latencies.push(performance.now() - started)
      if (response.status !== 200 || !text.includes(`cluster_workers_alive ${workers}`)) throw new Error(`scrape ${i} with ${workers} workers: ${response.status}`)
      bytes = text.length
    }
    latencies.sort((a, b) => a - b)
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), idleCpu, rss: await rssOf(server.child.pid), bytes }
  } finally {
    await server.stop()
  }
}

export default {
  name: 'metrics-scale',
  description: `GET /metrics on the primary with ${COUNTS.join(', ')} workers (hello app, default metrics): latency over ${SCRAPES} sequential scrapes, the primary's idle CPU over ${IDLE_MS / 1000} s and its RSS after the scrapes`,
  async run (scenario, { rounds }) {
    const runs = Math.min(rounds, 3)
    const results = Object.fromEntries(COUNTS.map((count) => [count, []]))
    for (let round = 0; round < runs; round++) {
      for (const count of round % 2 === 0 ? COUNTS : [...COUNTS].reverse()) {
        const result = await once(count)
        results[count].push(result)
        console.log(`  metrics-scale ${count} workers: p50 ${fmt(result.p50, 1)} ms, p99 ${fmt(result.p99, 1)} ms, idle cpu ${fmt(result.idleCpu, 2)}%, rss ${fmt(result.rss / MB, 1)} MB, ${fmt(result.bytes / 1024, 1)} KiB`)
      }
    }
    const med = (count, key) => median(results[count].map((result) => result[key]))
    return [
      `${scenario.description}. ${runs} runs per worker count (ascending and descending in turn), medians. Workers and primary share the 2 cores.`,
      '',
      '| workers | /metrics p50 ms | /metrics p99 ms | p50 per worker ms | primary idle CPU % | primary RSS MB | exposition KiB |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...COUNTS.map((count) => `| ${count} | ${fmt(med(count, 'p50'), 1)} | ${fmt(med(count, 'p99'), 1)} | ${fmt(med(count, 'p50') / count, 2)} | ` +
        `${fmt(med(count, 'idleCpu'), 2)} | ${fmt(med(count, 'rss') / MB, 1)} | ${fmt(med(count, 'bytes') / 1024, 1)} |`)
    ].join('\n')
  }
}
