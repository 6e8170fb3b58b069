import http from 'node:http'
import autocannon from 'autocannon'
import { fmt, freePort, median, rssOf, sleep, startServer } from '../lib.mjs'

// Does watching the cluster cost it anything over time? A 4-worker bootCluster under a steady
// keep-alive load is rolling-reloaded over and over while /metrics is scraped without pause and
// event-stream clients receive a stats sample every 10 ms (SOAK_SAMPLE_INTERVAL). Measured: the
// primary's RSS after the first 20 reloads (once its heap has settled) against the end, failed
// app requests, and the /metrics latency. SOAK_RELOADS and SOAK_SCRAPES shrink it for a quick look.
// V8 grows the primary's young generation in steps (doubling, up to 128 MiB on Node 24 here) when
// enough of its garbage survives, and RSS follows over the next minutes as its pages are first
// written: a step late in the run is heap sizing, not a leak, so growth is also given for the RSS
// outside the young generation (RSS less the young generation's resident pages). SOAK_FORCE_GC=1
// collects the primary's garbage before each RSS reading: under load V8 keeps the heap pages it
// freed, so plain RSS follows the heap's high-water mark; after a full GC it is what the primary
// holds on to.
const FORCE_GC = process.env.SOAK_FORCE_GC === '1'
/** The stats sample interval (ms): 10, 200 times the default, unless SOAK_SAMPLE_INTERVAL says otherwise. */
const SAMPLE_INTERVAL = Number(process.env.SOAK_SAMPLE_INTERVAL ?? 10)
const RELOADS = Number(process.env.SOAK_RELOADS ?? 200)
const SCRAPES = Number(process.env.SOAK_SCRAPES ?? 100_000)
const SETTLED_AFTER = Math.min(20, RELOADS)
const SCRAPERS = 2
const STREAMS = 5
const agent = new http.Agent({ keepAlive: true, maxSockets: SCRAPERS })

/** One GET over a kept-alive connection; resolves with its status and duration in ms. */
function fetchTimed (port, path) {
  const started = performance.now()
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (response) => {
      response.resume()
      response.on('end', () => resolve({ status: response.statusCode, ms: performance.now() - started }))
    }).on('error', () => resolve({ status: 0, ms: performance.now() - started }))
  })
}

/** An event-stream client that counts the stats samples it reads. */
function openStream (port) {
  const stream = { samples: 0, request: undefined }
  stream.request = http.get({ host: '127.0.0.1', port, path: '/cluster/events' }, (response) => {
    response.setEncoding('utf8')
    response.on('data', (chunk) => { stream.samples += chunk.split('event: stats\n').length - 1 })
  })
  stream.request.on('error', () => {})
  return stream
}

/**
 * The size of the primary's young generation and how much of it is resident (boot.mjs prints them
 * on SIGUSR2, after collecting its garbage when started with --expose-gc).
 */
async function youngGeneration (server) {
  const readings = () => server.lines().filter((line) => line.event === 'heap')
  const before = readings().length
  process.kill(server.child.pid, 'SIGUSR2')
  while (readings().length === before) await sleep(5)
  const { youngGeneration: size, youngGenerationResident: resident } = readings().at(-1)
  return { size, resident }
}

export default {
  name: 'monitoring-soak',
  description: `${RELOADS} rolling reloads of a 4-worker cluster under autocannon -c 10 while /metrics is scraped without pause (${SCRAPERS} at a time, until the last reload and at least ${fmt(SCRAPES)} times) and ${STREAMS} /cluster/events clients get a stats sample every ${SAMPLE_INTERVAL} ms${FORCE_GC ? '; the primary\'s garbage collected (--expose-gc) before each RSS reading' : ''}`,
  async run (scenario) {
    const monitoring = await freePort()
    const server = await startServer('boot.mjs', [], {
      env: { PORT: String(await freePort()), ...(FORCE_GC && { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc` }), CLUSTER_WORKERS: '4', LOG_LEVEL: 'warn', CLUSTER_MONITORING_PORT: String(monitoring), CLUSTER_MONITORING_SAMPLE_INTERVAL: String(SAMPLE_INTERVAL) },
      cpus: '0-1'
    })
    const primary = server.child.pid
    try {
      const load = autocannon({ url: `http://127.0.0.1:${server.port}/`, connections: 10, duration: 24 * 3600 })
      const streams = Array.from({ length: STREAMS }, () => openStream(monitoring))
      const scrapeTimes = []
      let scrapeFailures = 0
      // Scraping goes on until the last reload, so every RSS reading is taken under the same load,
      // and past it until SCRAPES have been made.
      let reloading = true
      let scrapes = 0
      const scrapeMore = () => reloading || scrapes < SCRAPES
      const scrapers = Array.from({ length: SCRAPERS }, async () => {
        while (scrapeMore()) {
          scrapes++
          const { status, ms } = await fetchTimed(monitoring, '/metrics')
          if (status === 200) scrapeTimes.push(ms)
          else scrapeFailures++
        }
      })

      const rss = []
      const young = []
      const started = Date.now()
      for (let reload = 1; reload <= RELOADS; reload++) {
        const done = server.lines().filter((line) => line.event === 'reload:done').length
        process.kill(primary, 'SIGHUP')
        while (server.lines().filter((line) => line.event === 'reload:done').length === done) {
          if (server.lines().some((line) => line.event === 'reload:failed')) throw new Error(`reload ${reload} failed`)
          await sleep(20)
        }
        young.push(await youngGeneration(server))
        rss.push(await rssOf(primary))
        if (reload % 20 === 0) console.log(`  monitoring-soak: ${reload} reloads, primary RSS ${fmt(rss.at(-1) / 2 ** 20, 1)} MiB, ${fmt(scrapes)} scrapes`)
      }
      reloading = false
      await Promise.all(scrapers)
      const minutes = (Date.now() - started) / 60_000
      load.stop()
      const result = await load
      for (const stream of streams) stream.request.destroy()
      agent.destroy()

      const sorted = scrapeTimes.sort((a, b) => a - b)
      /** A series' reading after reload SETTLED_AFTER, at the end (median of the last 10) and the growth between in MiB. */
      const growthOf = (series) => {
        const settled = series[SETTLED_AFTER - 1]
        const end = median(series.slice(-10))
        return { settled, end, growth: (end - settled) / 2 ** 20 }
      }
      const { settled, end, growth } = growthOf(rss)
      const outside = growthOf(rss.map((bytes, i) => bytes - young[i].resident))
      const mib = (bytes) => fmt(bytes / 2 ** 20, 1)
      const failed = result.errors + result.timeouts + result.non2xx
      const reading = FORCE_GC ? ', after a full GC' : ''
      const samples = streams.reduce((sum, stream) => sum + stream.samples, 0)
      return [
        `${scenario.description}. One run, ${fmt(minutes, 1)} minutes.`,
        '',
        '| measure | value |',
        '| --- | ---: |',
        `| primary RSS after reload ${SETTLED_AFTER}${reading} | ${mib(settled)} MiB |`,
        `| primary RSS at the end (median of the last 10 reloads${reading}) | ${mib(end)} MiB |`,
        `| growth after reload ${SETTLED_AFTER} | ${fmt(growth, 2)} MiB |`,
        `| young generation after reload ${SETTLED_AFTER} / at the end: size, resident | ${mib(young[SETTLED_AFTER - 1].size)}, ${mib(young[SETTLED_AFTER - 1].resident)} / ${mib(young.at(-1).size)}, ${mib(young.at(-1).resident)} MiB |`,
        `| primary RSS outside the young generation after reload ${SETTLED_AFTER} / at the end (median of the last 10) | ${mib(outside.settled)} / ${mib(outside.end)} MiB |`,
        `| growth outside the young generation after reload ${SETTLED_AFTER} | ${fmt(outside.growth, 2)} MiB |`,
        `| primary RSS, highest seen after a reload${reading} | ${mib(Math.max(...rss))} MiB |`,
        `| app requests served / failed (errors + timeouts + non-2xx) | ${fmt(result.requests.total)} / ${failed} |`,
        `| /metrics scrapes answered 200 / failed | ${fmt(sorted.length)} / ${scrapeFailures} |`,
        `| /metrics latency p50 / p99 / max | ${fmt(sorted[Math.floor(sorted.length * 0.5)] ?? NaN, 1)} / ${fmt(sorted[Math.floor(sorted.length * 0.99)] ?? NaN, 1)} / ${fmt(sorted.at(-1) ?? NaN, 1)} ms |`,
        `| stats samples received by the ${STREAMS} stream clients | ${fmt(samples)} |`,
        '',
        `- primary RSS growth after the first ${SETTLED_AFTER} reloads${reading}: ${fmt(growth, 2)} MiB: ${growth < 5 ? 'meets' : 'MISSES'} the goal (< 5 MB)`,
        `- primary RSS growth outside the young generation after the first ${SETTLED_AFTER} reloads${reading}: ${fmt(outside.growth, 2)} MiB: ${outside.growth < 5 ? 'meets' : 'MISSES'} the goal (< 5 MB)`,
        `- failed app requests: ${failed}: ${failed === 0 ? 'meets' : 'MISSES'} the goal (0)`
      ].join('\n')
    } finally {
      await server.stop()
    }
  }
}
