// Paired CPU measurement of two servers from benchmarks/servers/: both run at the same time on the
// same core under the same load, so a neighbour's burst or a slow minute hits both alike, and each
// pair gives the ratio of their CPU time per request. Fresh processes per pair (JIT states differ
// per process); the median of the per-pair ratios is the result. Resolves about 1-2% on this VM,
// where a timed A/B run swings by tens of percent. Appends a section to RESULTS.md.
//   node benchmarks/paired.mjs [--pairs 8] [--requests 60000] SCRIPT ARGS_A vs ARGS_B
//   node benchmarks/paired.mjs hello.mjs bare vs plugin
//   node benchmarks/paired.mjs hello.mjs plugin '{"metrics":false}' vs plugin
//   CLUSTER_WORKERS=1 node benchmarks/paired.mjs --redis rate-limit.mjs memory vs redis
// --redis starts a private redis-server on the other core, gives both servers its URL (REDIS_URL),
// and reports its own CPU per request of B, so a saving in B is not just work moved into Redis.
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { appendResults, factsLine, fmt, machineFacts, median, startRedis, startServer, treeCpuMs } from './lib.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { pairs: { type: 'string', default: '8' }, requests: { type: 'string', default: '60000' }, redis: { type: 'boolean', default: false } }
})
const split = positionals.indexOf('vs')
if (positionals.length < 2 || split < 1) throw new Error('usage: node benchmarks/paired.mjs [--pairs N] [--requests N] [--redis] SCRIPT ARGS_A vs ARGS_B')
const [script, ...argsA] = positionals.slice(0, split)
const argsB = positionals.slice(split + 1)
const pairs = Number(values.pairs)
const requests = Number(values.requests)
const label = (args) => `${script} ${args.join(' ')}`.trim()

const load = (server, amount) => autocannon({ url: `http://127.0.0.1:${server.port}/`, connections: 25, amount })
const redis = values.redis ? await startRedis('0') : undefined
const env = redis === undefined ? {} : { REDIS_URL: redis.url }
const rows = []
try {
  for (let pair = 0; pair < pairs; pair++) {
    const started = await Promise.allSettled([startServer(script, argsA, { env }), startServer(script, argsB, { env })])
    const servers = started.filter((outcome) => outcome.status === 'fulfilled').map((outcome) => outcome.value)
    if (servers.length < 2) {
      await Promise.all(servers.map((server) => server.stop()))
      throw started.find((outcome) => outcome.status === 'rejected').reason
    }
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
      console.log(`pair ${pair + 1}: ${label(argsA)} ${fmt(a, 2)} µs, ${label(argsB)} ${fmt(b, 2)} µs, ratio ${fmt(b / a, 3)}` +
        (redisUs === undefined ? '' : `, redis-server ${fmt(redisUs, 2)} µs per request of B`))
    } finally {
      await Promise.all(servers.map((server) => server.stop()))
    }
  }
} finally {
  await redis?.stop()
}

const ratios = rows.map((row) => row.ratio)
const workersNote = process.env.CLUSTER_WORKERS === undefined ? '' : `, CLUSTER_WORKERS=${process.env.CLUSTER_WORKERS}`
const markdown = `### paired CPU — ${factsLine(machineFacts())}

\`${label(argsB)}\` vs \`${label(argsA)}\`: both servers on one core at the same time, ${fmt(requests)} requests each (25 connections) after a warm-up, ${pairs} pairs of fresh processes${workersNote}.

- CPU µs/request, medians: ${label(argsA)} ${fmt(median(rows.map((row) => row.a)), 2)}, ${label(argsB)} ${fmt(median(rows.map((row) => row.b)), 2)}
- per-pair ratios: ${ratios.map((ratio) => fmt(ratio, 3)).join(', ')}
${redis === undefined ? '' : `- redis-server's own CPU (INFO cpu, on the other core) per request of ${label(argsB)}, median: ${fmt(median(rows.map((row) => row.redisUs)), 2)} µs\n`}- **median ratio ${fmt(median(ratios), 3)}** (CPU per request; the throughput ratio of a CPU-bound server is about its inverse)
`
console.log(`\n${markdown}`)
await appendResults(markdown)
