import type { MetricJSON } from '../../common/protocol.js'

// Aggregating the workers' metrics into one Prometheus text exposition, in the primary.
//
// prom-client's AggregatorRegistry does this too, but it rejects the whole scrape when one worker
// is slow and leaves the pending request behind; and loading prom-client would cost the primary
// memory it otherwise does not need (benchmarks/RESULTS.md, supervisor). The rules here are prom-client's: each metric's `aggregator` (sum by
// default; first, min, max, average, omit) applied per metric name and label set. One rule is
// added: summaries are never combined (a sum of quantiles means nothing), each worker's series
// keeps a `worker` label instead.

type Value = MetricJSON['values'][number]

/** A series built in the primary (the cluster_* ones). */
export interface Series {
  name: string
  help: string
  type: 'gauge' | 'counter'
  values: Array<{ labels?: Record<string, string | number>, value: number }>
}

const COMBINE: Record<string, ((values: number[]) => number) | undefined> = {
  sum: (values) => values.reduce((a, b) => a + b, 0),
  first: (values) => values[0] as number,
  min: (values) => Math.min(...values),
  max: (values) => Math.max(...values),
  average: (values) => values.reduce((a, b) => a + b, 0) / values.length
}

interface Merged {
  help: string
  type: string
  aggregator: string
  /** Keyed by sample name and labels, in the order first seen. */
  samples: Map<string, { name: string, labels: Record<string, string | number>, values: number[] }>
}

/** The Prometheus text of every worker's metrics, combined. */
export function aggregate (workers: Array<{ id: string, metrics: MetricJSON[] }>): string {
  const merged = new Map<string, Merged>()
  for (const { id, metrics } of workers) {
    for (const metric of metrics) {
      let entry = merged.get(metric.name)
      if (entry === undefined) {
        entry = { help: metric.help, type: String(metric.type), aggregator: metric.aggregator ?? 'sum', samples: new Map() }
        merged.set(metric.name, entry)
      }
      for (const value of metric.values) add(entry, metric.name, value, entry.type === 'summary' ? id : undefined)
    }
  }
  const lines: string[] = []
  for (const [name, entry] of merged) {
    const combine = COMBINE[entry.aggregator]
    if (combine === undefined) continue // 'omit', or an aggregator we do not know: leave it out
    lines.push(`# HELP ${name} ${escapeHelp(entry.help)}`, `# TYPE ${name} ${entry.type}`)
    for (const sample of entry.samples.values()) lines.push(sampleLine(sample.name, sample.labels, combine(sample.values)))
  }
  return text(lines)
}

/** The Prometheus text of the primary's own series. */
export function render (own: Series[]): string {
  const lines: string[] = []
  for (const series of own) {
    lines.push(`# HELP ${series.name} ${escapeHelp(series.help)}`, `# TYPE ${series.name} ${series.type}`)
    for (const { labels = {}, value } of series.values) lines.push(sampleLine(series.name, labels, value))
  }
  return text(lines)
}

function text (lines: string[]): string {
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

function add (entry: Merged, metricName: string, value: Value, worker: string | undefined): void {
  const name = value.metricName ?? metricName
  const labels: Record<string, string | number> = {}
  for (const [key, label] of Object.entries(value.labels)) if (label !== undefined) labels[key] = label
  if (worker !== undefined) labels.worker = worker
  const key = sampleKey(name, labels)
  const sample = entry.samples.get(key)
  if (sample === undefined) entry.samples.set(key, { name, labels, values: [value.value] })
  else sample.values.push(value.value)
}

/** One sample's identity: its name and its labels, whatever their order. */
export function sampleKey (name: string, labels: Record<string, unknown>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1))}`
}

function sampleLine (name: string, labels: Record<string, string | number>, value: number): string {
  const pairs = Object.entries(labels).map(([key, label]) => `${key}="${escapeLabel(String(label))}"`)
  return `${name}${pairs.length === 0 ? '' : `{${pairs.join(',')}}`} ${formatValue(value)}`
}

function formatValue (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

function escapeHelp (help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}
