// `npm run perf:load-test`: autocannon against the running example (PORT, default 3000) for
// DURATION seconds (default 10) with CONNECTIONS (default 50), then a short summary. Not one of
// the interleaved benchmarks: a quick look at the app you are running.
import autocannon from 'autocannon'

const port = Number(process.env.PORT ?? 3000)
const duration = Number(process.env.DURATION ?? 10)
const connections = Number(process.env.CONNECTIONS ?? 50)
const workers = new Map()

for (const path of ['/api/today', '/health/live']) {
  const url = `http://127.0.0.1:${port}${path}`
  try {
    await fetch(url)
  } catch {
    console.error(`perf:load-test: nothing answers at ${url}; start the example first (npm start)`)
    process.exit(2)
  }
  const instance = autocannon({ url, connections, duration })
  instance.on('response', (_client, _status, _body, _time, headers) => {
    const id = headers?.['x-worker-id']
    if (id !== undefined) workers.set(id, (workers.get(id) ?? 0) + 1)
  })
  const result = await instance
  console.log(`${path}: ${Math.round(result.requests.average).toLocaleString('en-US')} req/s, latency p50 ${result.latency.p50} ms, ` +
    `p99 ${result.latency.p99} ms, ${result.requests.total.toLocaleString('en-US')} requests, errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}`)
}
console.log(`answered by workers: ${[...workers].map(([id, count]) => `${id} (${count.toLocaleString('en-US')})`).join(', ')}`)
