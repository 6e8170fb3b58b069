// Paired CPU measurement of two servers from benchmarks/servers/: both run at the same time on the
// same core under the same load, so a neighbour's burst or a slow minute hits both alike, and each
// pair gives the ratio of their CPU time per request. Fresh processes per pair (JIT states differ
// per process); the median of the per-pair ratios is the result, beside each side's spread
// (min, median, max µs/request): a side that lands in a slow mode in some pairs shows there.
// Appends a section to RESULTS.md.
//   node benchmarks/paired.mjs [--pairs 8] [--requests 60000] [--start together|sequential] SCRIPT ARGS_A vs ARGS_B
//   node benchmarks/paired.mjs hello.mjs bare vs plugin
//   node benchmarks/paired.mjs --start sequential hello.mjs headers vs plugin
//   node benchmarks/paired.mjs hello.mjs plugin '{"metrics":false}' vs plugin
//   CLUSTER_WORKERS=1 node benchmarks/paired.mjs --redis rate-limit.mjs memory vs redis
// --start: `together` (default) starts both servers of a pair at once; `sequential` starts one,
// waits until it listens, then the other, A first in odd pairs and B first in even ones. How a
// process starts moves where its JIT settles: a slow mode that one way hides, the other shows.
// --redis starts a private redis-server on the other core, gives both servers its URL (REDIS_URL),
// and reports its own CPU per request of B, so a saving in B is not just work moved into Redis.
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { appendResults, factsLine, fmt, machineFacts, median, startRedis, startServer, treeCpuMs } from './lib.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    pairs: { type: 'string', default: '8' },
    requests: { type: 'string', default: '60000' },
    start: { type: 'string', default: 'together' },
    redis: { type: 'boolean', default: false }
  }
})
const split = positionals.indexOf('vs')
const usage = 'usage: node benchmarks/paired.mjs [--pairs N] [--requests N] [--start together|sequential] [--redis] SCRIPT ARGS_A vs ARGS_B'
if (positionals.length < 2 || split < 1) throw new Error(usage)
if (!['together', 'sequential'].includes(values.start)) throw new Error(`--start: got ${JSON.stringify(values.start)}, expected together or sequential`)
const [script, ...argsA] = positionals.slice(0, split)
const argsB = positionals.slice(split + 1)
const pairs = Number(values.pairs)
const requests = Number(values.requests)
const sequential = values.start === 'sequential'
const label = (args) => `${script} ${args.join(' ')}`.trim()

const load = (server, amount) => autocannon({ url: `http://127.0.0.1:${server.port}/`, connections: 25, amount })
const redis = values.redis ? await startRedis('0') : undefined
const env = redis === undefined ? {} : { REDIS_URL: redis.url }

/** Both servers of a pair, as [A, B]; one after the other (alternating who goes first) when sequential. */
async function startPair (pair) {
  const start = (args) => startServer(script, args, { env })
  if (!sequential) return await settle([start(argsA), start(argsB)])
  const aFirst = pair % 2 === 0
  const first = await settle([start(aFirst ? argsA : argsB)])
  const second = await settle([start(aFirst ? argsB : argsA)], first)
  return aFirst ? [...first, ...second] : [...second, ...first]
}

/** The started servers; if any failed, stops the others (and `also`) and throws its error. */
async function settle (starting, also = []) {
  const started = await Promise.allSettled(starting)
  const servers = started.filter((outcome) => outcome.status === 'fulfilled').map((outcome) => outcome.value)
  const failed = started.find((outcome) => outcome.status === 'rejected')
  if (failed === undefined) return servers
  await Promise.all([...servers, ...also].map((server) => server.stop()))
  throw failed.reason
}

const rows = []
try {
  for (let pair = 0; pair < pairs; pair++) {
    const servers = await startPair(pair)
    try {
      await Promise.all(servers.map((server) => load(server, requests / 2))) // warm-up
      const before = await Promise.all(servers.map((server) => treeCpuMs(server.child.pid)))
      const redisBefore = await redis?.cpuMs()
      const results = await Promise.all(servers.map((server) => load(server, requests)))
      const after = await Promise.all(servers.map((server) => treeCpuMs(server.child.pid)))
      const redisMs = redis === undefined ? undefined : await redis.cpuMs() - redisBefore
      for (const result of results) if (result.errors + result.timeouts + result.non2xx > 0) throw new Error('requests failed during a pair')
      const [a, b] = after.map((ms, i) => (ms - before[i]) * 1000 / requests)
      const redisUs = redisMs === undefined ? undefined : redisMs * 1000 / requests
      rows.push({ a, b, ratio: b / a, redisUs })
      const order = sequential ? (pair % 2 === 0 ? ' (A started first)' : ' (B started first)') : ''
      console.log(`pair ${pair + 1}${order}: ${label(argsA)} ${fmt(a, 2)} µs, ${label(argsB)} ${fmt(b, 2)} µs, ratio ${fmt(b / a, 3)}` +
        (redisUs === undefined ? '' : `, redis-server ${fmt(redisUs, 2)} µs per request of B`))
    } finally {
      await Promise.all(servers.map((server) => server.stop()))
    }
  }
} finally {
  await redis?.stop()
}

/** min / median / max of one side's µs per request, and max over min. */
function spread (side) {
  const all = rows.map((row) => row[side])
  const min = Math.min(...all)
  const max = Math.max(...all)
  return `${fmt(min, 2)} / ${fmt(median(all), 2)} / ${fmt(max, 2)} (max/min ${fmt(max / min, 3)})`
}

const ratios = rows.map((row) => row.ratio)
const workersNote = process.env.CLUSTER_WORKERS === undefined ? '' : `, CLUSTER_WORKERS=${process.env.CLUSTER_WORKERS}`
const startNote = sequential ? 'started one after the other (A first in odd pairs, B first in even ones)' : 'started together'
const markdown = `### paired CPU — ${factsLine(machineFacts())}

\`${label(argsB)}\` vs \`${label(argsA)}\`: both servers on one core at the same time, ${fmt(requests)} requests each (25 connections) after a warm-up, ${pairs} pairs of fresh processes ${startNote}${workersNote}.

- CPU µs/request, min / median / max: ${label(argsA)} ${spread('a')}; ${label(argsB)} ${spread('b')}
- per-pair ratios: ${ratios.map((ratio) => fmt(ratio, 3)).join(', ')} (max ${fmt(Math.max(...ratios), 3)})
${redis === undefined ? '' : `- redis-server's own CPU (INFO cpu, on the other core) per request of ${label(argsB)}, median: ${fmt(median(rows.map((row) => row.redisUs)), 2)} µs\n`}- **median ratio ${fmt(median(ratios), 3)}** (CPU per request; the throughput ratio of a CPU-bound server is about its inverse)
`
console.log(`\n${markdown}`)
await appendResults(markdown)
