import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startCluster } from './helpers/cluster.js'
import { get } from './helpers/http.js'
import { startPrometheus } from './helpers/prometheus.js'

const dashboard = JSON.parse(readFileSync(new URL('../deploy/grafana/fastify-cluster-kit.json', import.meta.url), 'utf8'))
const expressions: string[] = dashboard.panels.flatMap((panel: any) => panel.targets.map((target: any) => target.expr))

/** Words of PromQL itself (functions, aggregations, keywords) that are not series names. */
const PROMQL = new Set(['sum', 'rate', 'increase', 'histogram_quantile', 'avg', 'max', 'min', 'offset'])

/** The series an expression selects: identifiers outside label lists, matchers and ranges that are not PromQL's own. */
function seriesOf (expr: string): string[] {
  const bare = expr.replace(/\b(by|without)\s*\([^)]*\)/g, ' ').replace(/\{[^}]*\}|"[^"]*"|\[[^\]]*\]/g, ' ')
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map(([name]) => name).filter((name) => !PROMQL.has(name))
}

t.test('the Grafana dashboard: every expression names series the kit exports, and a real Prometheus evaluates each', async (t) => {
  t.ok(expressions.length >= 10, `${expressions.length} expressions`)
  const cluster = await startCluster(t)
  for (let i = 0; i < 20; i++) await get(cluster.port, '/')
  const text = await (await fetch(`http://127.0.0.1:${cluster.monitoringPort}/metrics`)).text()
  const exported = new Set<string>()
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exported.add(name as string)
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${name as string}${suffix}`)
  }
  for (const expr of expressions) {
    const names = seriesOf(expr)
    t.ok(names.length > 0, `${expr} selects a series`)
    for (const name of names) t.ok(exported.has(name), `${name} (in ${expr}) is exported`)
  }

  const prometheus = await startPrometheus(t, cluster.monitoringPort)
  // Grafana's own variables, as it would fill them in for a 1 s scrape interval.
  const filled = (expr: string): string => expr.replace(/\$__rate_interval/g, '5s').replace(/\$__range/g, '1m')
  let ready = false
  for (let i = 0; i < 200 && !ready; i++) {
    const body: any = await (await fetch(`http://127.0.0.1:${prometheus}/api/v1/query?query=count_over_time(cluster_workers_alive[1m])`).catch(() => undefined))?.json().catch(() => undefined)
    ready = Number(body?.data?.result?.[0]?.value?.[1]) >= 3
    if (!ready) await sleep(200)
  }
  t.ok(ready, 'Prometheus scraped the cluster three times')
  for (const expr of expressions) {
    const response = await fetch(`http://127.0.0.1:${prometheus}/api/v1/query?query=${encodeURIComponent(filled(expr))}`)
    const body: any = await response.json()
    t.equal(body.status, 'success', `Prometheus evaluates ${expr}${body.error === undefined ? '' : `: ${String(body.error)}`}`)
  }
  const alive: any = await (await fetch(`http://127.0.0.1:${prometheus}/api/v1/query?query=cluster_workers_alive`)).json()
  t.equal(alive.data.result[0]?.value[1], '2')
})
