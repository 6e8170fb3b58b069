import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startCluster, until, type ClusterFixture } from './helpers/cluster.js'
import { get } from './helpers/http.js'
import { startPrometheus } from './helpers/prometheus.js'

async function monitor (cluster: ClusterFixture, path: string, init: RequestInit = {}): Promise<{ status: number, body: any, text: string }> {
  const response = await fetch(`http://127.0.0.1:${cluster.monitoringPort}${path}`, init)
  const text = await response.text()
  return { status: response.status, text, body: response.headers.get('content-type')?.includes('json') === true ? JSON.parse(text) : undefined }
}

/** Stats once both workers sent a heartbeat (memory, cpu and event loop are known). */
async function statsAfterHeartbeats (cluster: ClusterFixture): Promise<any> {
  return await until('a heartbeat from both workers', async () => {
    const { body } = await monitor(cluster, '/cluster/stats')
    return body.workers.every((worker: any) => worker.memory !== null) ? body : undefined
  })
}

/** The value of each sample line of `name` (with labels) in a Prometheus text exposition. */
function samples (text: string, name: string): Array<{ labels: string, value: number }> {
  return text.split('\n')
    .map((line) => new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ labels: match[1] ?? '', value: Number(match[2]) }))
}

t.test('/cluster/stats lists both workers; after kill -9 of one, its restarts rise and its pid changes', async (t) => {
  const cluster = await startCluster(t)
  const stats = await statsAfterHeartbeats(cluster)
  t.equal(stats.primary.pid, cluster.child.pid)
  t.same(stats.workers.map((worker: any) => worker.id), ['0', '1'])
  for (const worker of stats.workers) {
    t.equal(worker.state, 'ready')
    t.type(worker.pid, 'number')
    t.type(worker.uptime, 'number')
    t.equal(worker.restarts, 0)
    t.ok(worker.memory.rss > 10 * 2 ** 20, 'memory in bytes')
    t.type(worker.eventLoop.p99, 'number')
    t.type(worker.cpu, 'number')
  }
  t.same([stats.alive, stats.expected, stats.healthy], [2, 2, true])
  t.notMatch(JSON.stringify(stats), /FIXTURE_|PATH|HOME/, 'no environment variable leaks into stats')

  const old = stats.workers[0].pid
  process.kill(old, 'SIGKILL')
  const after = await until('slot 0 replaced', async () => {
    const { body } = await monitor(cluster, '/cluster/stats')
    return body.workers[0].state === 'ready' && body.workers[0].pid !== old ? body : undefined
  })
  t.equal(after.workers[0].restarts, 1, 'slot 0 restarted once')
  t.equal(after.workers[1].restarts, 0)
  t.equal(after.workers[1].pid, stats.workers[1].pid, 'slot 1 untouched')
})

t.test('/cluster/health: 503 when a slot gave up, and below half alive', async (t) => {
  const cluster = await startCluster(t, {}, { maxRestarts: 0 })
  t.same((await monitor(cluster, '/cluster/health')).body, { status: 'ok', healthy: true, alive: 2, expected: 2, warnings: [] })
  const [first, second] = (await monitor(cluster, '/cluster/stats')).body.workers.map((worker: any) => worker.pid)
  process.kill(second, 'SIGKILL') // an early crash with maxRestarts 0: the slot is given up
  const gaveUp = await until('slot 1 given up', async () => {
    const health = await monitor(cluster, '/cluster/health')
    return health.status === 503 ? health : undefined
  })
  t.same(gaveUp.body, { status: 'degraded', healthy: false, alive: 1, expected: 2, warnings: ['worker 1 gave up after 0 restarts (early crashes in a row)'] })
  process.kill(first, 'SIGKILL')
  const none = await until('no worker alive', async () => {
    const health = await monitor(cluster, '/cluster/health')
    return health.body.alive === 0 ? health : undefined
  })
  t.equal(none.status, 503)
  t.match(none.body.warnings, ['worker 0 gave up', 'worker 1 gave up', 'only 0 of 2 workers alive'])
})

t.test('/metrics: the workers\' request histograms summed, by route pattern; cluster series; valid for promtool and Prometheus', async (t) => {
  const cluster = await startCluster(t)
  const paths = ['/', '/', '/slow?ms=1', '/slow?ms=2', '/nope/123', '/nope/456', '/', '/slow?ms=3', '/', '/nope/789']
  const served = new Set<string>()
  for (const path of paths) served.add(String((await get(cluster.port, path)).headers['x-worker-id']))
  t.same([...served].sort(), ['0', '1'], 'both workers served some of the requests')
  await get(cluster.port, '/health/ready') // a probe: not app traffic, not counted
  await statsAfterHeartbeats(cluster)

  const metrics = await monitor(cluster, '/metrics')
  t.equal(metrics.status, 200)
  const counts = samples(metrics.text, 'http_request_duration_seconds_count')
  t.equal(counts.reduce((sum, sample) => sum + sample.value, 0), paths.length, 'counts over all routes sum to the requests sent')
  t.same(counts.map((sample) => sample.labels).sort(), [
    '{method="GET",route="/",status_code="200"}',
    '{method="GET",route="/slow",status_code="200"}',
    '{method="GET",route="not_found",status_code="404"}'
  ], 'one series per route pattern; every 404 under one label')
  t.notMatch(metrics.text, /nope\/123|ms=1/, 'no raw URL in any label')
  t.same(samples(metrics.text, 'cluster_workers_alive'), [{ labels: '', value: 2 }])
  t.same(samples(metrics.text, 'cluster_workers_expected'), [{ labels: '', value: 2 }])
  t.same(samples(metrics.text, 'cluster_worker_restarts_total').map((sample) => sample.labels), ['{worker="0"}', '{worker="1"}'])
  t.equal(samples(metrics.text, 'cluster_worker_resident_memory_bytes').length, 2)
  t.same(samples(metrics.text, 'cluster_reloads_total'), [{ labels: '{result="ok"}', value: 0 }, { labels: '{result="failed"}', value: 0 }])
  t.equal(samples(metrics.text, 'process_start_time_seconds').length, 0, 'prom-client\'s "omit" metrics are left out')

  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics.text, encoding: 'utf8' })
  t.equal(promtool.error, undefined, 'promtool runs (Debian package prometheus)')
  t.not(promtool.status, 1, `promtool parses the exposition: ${promtool.stderr}`)
  // Exit code 3 is lint advice; the only advice allowed is about prom-client's own default metric names.
  const advice = `${promtool.stdout}${promtool.stderr}`.split('\n').filter((line) => line.trim() !== '')
  t.same(advice.filter((line) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(line)), [],
    'no lint finding about our own series')

  const prometheus = await startPrometheus(t, cluster.monitoringPort)
  const answer = await until('Prometheus to scrape the cluster', async () => {
    const response = await fetch(`http://127.0.0.1:${prometheus}/api/v1/query?query=cluster_workers_alive`).catch(() => undefined)
    const body: any = await response?.json().catch(() => undefined)
    return body?.data?.result?.length > 0 ? body.data.result : undefined
  }, 30_000)
  t.equal(answer[0].value[1], '2', 'a real Prometheus answers cluster_workers_alive = 2')
})

/** The sum of every `http_request_duration_seconds_count` sample: the requests the cluster counted. */
function requestCount (text: string): number {
  return samples(text, 'http_request_duration_seconds_count').reduce((sum, sample) => sum + sample.value, 0)
}

t.test('counters survive a worker\'s replacement: kill -9 after a scrape and a rolling reload without one both keep the totals', async (t) => {
  const cluster = await startCluster(t)
  for (let i = 0; i < 20; i++) await get(cluster.port, '/')
  t.equal(requestCount((await monitor(cluster, '/metrics')).text), 20, 'N = 20 counted')

  const [victim] = (await statsAfterHeartbeats(cluster)).workers
  process.kill(victim.pid, 'SIGKILL')
  await until('slot 0 replaced', async () => {
    const { body } = await monitor(cluster, '/cluster/stats')
    return body.workers[0].state === 'ready' && body.workers[0].pid !== victim.pid ? true : undefined
  })
  for (let i = 0; i < 10; i++) await get(cluster.port, '/')
  const afterKill = (await monitor(cluster, '/metrics')).text
  t.equal(requestCount(afterKill), 30, 'N + M: the killed worker\'s last scraped counts are kept')
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: afterKill, encoding: 'utf8' })
  t.not(promtool.status, 1, `promtool still parses the exposition: ${promtool.stderr}`)
  t.equal(samples(afterKill, 'http_request_duration_seconds_bucket').filter((sample) => sample.labels.includes('le="+Inf"'))
    .reduce((sum, sample) => sum + sample.value, 0), 30, 'histogram buckets are kept as well as counts')

  // No scrape between these requests and the reload: each old worker hands its last values over as it closes.
  for (let i = 0; i < 15; i++) await get(cluster.port, '/')
  t.equal((await cluster.call('reload')).ok, true)
  for (let i = 0; i < 5; i++) await get(cluster.port, '/')
  t.equal(requestCount((await monitor(cluster, '/metrics')).text), 50, 'every request since the start, across a kill -9 and a rolling reload')
})

t.test('metrics.workerLabel: one series per worker, kept across the worker\'s replacement; metrics.endpoint serves the cluster\'s metrics on the app port', async (t) => {
  const cluster = await startCluster(t, {}, { plugin: { metrics: { workerLabel: true, endpoint: '/metrics' } } })
  const served = new Map<string, number>()
  for (let i = 0; i < 12; i++) {
    const id = String((await get(cluster.port, '/')).headers['x-worker-id'])
    served.set(id, (served.get(id) ?? 0) + 1)
  }
  const labelled = (text: string): Map<string, number> => new Map(samples(text, 'http_request_duration_seconds_count')
    .map((sample) => [/worker="(\d+)"/.exec(sample.labels)?.[1] ?? 'none', sample.value]))
  t.same(labelled((await monitor(cluster, '/metrics')).text), served, 'each worker\'s count under its own label')

  const appPort = await get(cluster.port, '/metrics')
  t.equal(appPort.status, 200)
  t.match(appPort.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.same(samples(appPort.body, 'cluster_workers_alive'), [{ labels: '', value: 2 }], 'the app port answers with the cluster\'s series')
  t.same(labelled(appPort.body), served, 'and every worker\'s counts, whichever worker answered; its own scrape is not counted')

  t.equal((await cluster.call('reload')).ok, true)
  await get(cluster.port, '/')
  const after = labelled((await monitor(cluster, '/metrics')).text)
  t.equal([...after.values()].reduce((a, b) => a + b, 0), 13, 'a replaced worker\'s series goes on from its last value')
  t.same([...after.keys()].sort(), ['0', '1'])
})

t.test('a worker with a blocked event loop: the scrape answers 200 after the scrape timeout, not after the worker', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { scrapeTimeout: 500 } })
  // Blocked for 8 s: a scrape that waited for it would take over 7 s; one that gives up after the
  // 500 ms scrape timeout is well under the generous 2.5 s bound even on a busy machine.
  const blocked = get(cluster.port, '/block?ms=8000')
  await sleep(300)
  const started = Date.now()
  const metrics = await monitor(cluster, '/metrics')
  const took = Date.now() - started
  t.equal(metrics.status, 200)
  t.ok(took >= 450 && took <= 2500, `took ${took} ms`)
  const failures = samples(metrics.text, 'cluster_metrics_scrape_failures_total')
  t.equal(failures.length, 1, 'one worker left out of this scrape and counted')
  t.equal(failures[0]?.value, 1)
  t.same(samples(metrics.text, 'cluster_workers_alive'), [{ labels: '', value: 2 }])
  const id = (await blocked).headers['x-worker-id']
  t.equal(failures[0]?.labels, `{worker="${String(id)}"}`, 'the blocked worker is the one counted')
  const later = await monitor(cluster, '/metrics')
  t.equal(samples(later.text, 'http_request_duration_seconds_count').reduce((sum, sample) => sum + sample.value, 0), 1,
    'once it answers again, its requests are back in the scrape')
})

t.test('scrapes that arrive while the workers are being asked share that round: a blocked worker is waited for and counted once', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { scrapeTimeout: 2000 } })
  // One worker blocked for 8 s makes the round last the 2 s scrape timeout; five scrapes sent at
  // once all arrive within it even on a busy machine.
  const blocked = get(cluster.port, '/block?ms=8000')
  await sleep(300)
  const scrapes = await Promise.all(Array.from({ length: 5 }, async () => await monitor(cluster, '/metrics')))
  t.same(scrapes.map(({ status }) => status), [200, 200, 200, 200, 200])
  const id = String((await blocked).headers['x-worker-id'])
  t.same(scrapes.map(({ text }) => samples(text, 'cluster_metrics_scrape_failures_total')), Array(5).fill([{ labels: `{worker="${id}"}`, value: 1 }]),
    'the blocked worker was asked once for all five')
  const later = await monitor(cluster, '/metrics')
  t.same(samples(later.text, 'cluster_metrics_scrape_failures_total'), [{ labels: `{worker="${id}"}`, value: 1 }], 'a scrape after the round asks again, and the worker answers')
})

t.test('POST /cluster/restart: 401 without the token, 403 with a wrong one, 202 with it, 409 while a reload runs', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { token: 'test-token-123' } })
  const before = (await monitor(cluster, '/cluster/stats')).body.workers.map((worker: any) => worker.pid)
  const missing = await monitor(cluster, '/cluster/restart', { method: 'POST' })
  t.equal(missing.status, 401)
  t.match(missing.body.message, /Bearer/)
  t.equal((await monitor(cluster, '/cluster/restart', { method: 'POST', headers: { authorization: 'Bearer wrong' } })).status, 403)
  const auth = { method: 'POST', headers: { authorization: 'Bearer test-token-123' } }
  const accepted = await monitor(cluster, '/cluster/restart', auth)
  t.equal(accepted.status, 202)
  t.same(accepted.body, { status: 'reloading', workers: 2 })
  const conflict = await monitor(cluster, '/cluster/restart', auth)
  t.equal(conflict.status, 409)
  t.match(conflict.body.message, /already running/)
  await cluster.waitForEvent((event) => event.event === 'reload:done')
  const after = (await monitor(cluster, '/cluster/stats')).body.workers.map((worker: any) => worker.pid)
  t.equal(after.filter((pid: number) => before.includes(pid)).length, 0, 'every pid changed')
  const stats = await monitor(cluster, '/metrics')
  t.same(samples(stats.text, 'cluster_reloads_total')[0], { labels: '{result="ok"}', value: 1 })
  t.equal((await monitor(cluster, '/cluster/nothing')).status, 404, 'unknown routes 404')
  const big = await monitor(cluster, '/cluster/restart', { ...auth, headers: { ...auth.headers, 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(4096) }) })
  t.equal(big.status, 413, 'request bodies are limited')
})
