import type { MetricJSON } from '../../common/protocol.js'
import { sampleKey } from './aggregate.js'

// The last metrics each worker reported, and the counters of the workers that are gone.
//
// A cluster total that is the sum of the live workers' counters drops whenever a worker is
// replaced, and Prometheus reads a drop as a counter reset (rate() then undercounts or spikes).
// So a worker's last counter and histogram values outlive it here: it reports them once more
// when it closes (`fck:metrics-final`), and whatever the primary last heard from it is folded
// into the retired totals when its IPC channel closes — after every message it sent was read,
// which its 'exit' event does not promise. Gauges and summaries are not folded: a dead
// process's memory or quantiles are no part of the cluster's.

type Value = MetricJSON['values'][number]

interface Reported {
  /** Slot id, the `worker` label summaries keep. */
  id: string
  metrics: MetricJSON[]
}

export class MetricsLedger {
  /** By pid: workers whose channel is still open and that reported at least once. */
  readonly #last = new Map<number, Reported>()
  /** By metric name, then sample name and labels. */
  readonly #retired = new Map<string, MetricJSON & { byKey: Map<string, Value> }>()

  record (pid: number, id: string, metrics: MetricJSON[]): void {
    this.#last.set(pid, { id, metrics })
  }

  /** Folds a gone worker's last counters and histograms into the retired totals. */
  retire (pid: number): void {
    const reported = this.#last.get(pid)
    this.#last.delete(pid)
    for (const metric of reported?.metrics.filter(foldable) ?? []) {
      let folded = this.#retired.get(metric.name)
      if (folded === undefined) {
        folded = { name: metric.name, help: metric.help, type: metric.type, aggregator: metric.aggregator, values: [], byKey: new Map() }
        this.#retired.set(metric.name, folded)
      }
      for (const value of metric.values) {
        const key = sampleKey(value.metricName ?? '', value.labels)
        const sample = folded.byKey.get(key)
        if (sample !== undefined) sample.value += value.value
        else {
          const copy = { ...value, labels: { ...value.labels } }
          folded.byKey.set(key, copy)
          folded.values.push(copy)
        }
      }
    }
  }

  /**
   * What a scrape sums: the serving workers' last reports in full; the others still alive
   * (draining, say) only for their counters and histograms, which must not dip before they
   * are folded; and the retired totals.
   */
  sources (servingPids: ReadonlySet<number>): Array<{ id: string, metrics: MetricJSON[] }> {
    const sources: Array<{ id: string, metrics: MetricJSON[] }> = []
    for (const [pid, { id, metrics }] of this.#last) sources.push({ id, metrics: servingPids.has(pid) ? metrics : metrics.filter(foldable) })
    sources.push({ id: 'retired', metrics: [...this.#retired.values()].map(({ byKey, ...metric }) => metric) })
    return sources
  }
}

function foldable (metric: MetricJSON): boolean {
  return (metric.type === 'counter' || metric.type === 'histogram') && (metric.aggregator ?? 'sum') === 'sum'
}
