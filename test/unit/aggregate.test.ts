import t from 'tap'
import { aggregate, render } from '../../lib/primary/monitoring/aggregate.js'

const counter = (value: number, labels = {}) => ({ name: 'requests_total', help: 'Requests', type: 'counter', values: [{ value, labels }] })

t.test('counters and histograms sum across workers per label set; gauges follow their aggregator; omit is left out', async (t) => {
  const text = aggregate([
    { id: '0', metrics: [counter(3, { route: '/' }), { name: 'lag', help: 'Lag', type: 'gauge', aggregator: 'max', values: [{ value: 5, labels: {} }] }, { name: 'start', help: 'Start', type: 'gauge', aggregator: 'omit', values: [{ value: 1, labels: {} }] }] },
    { id: '1', metrics: [counter(4, { route: '/' }), counter(1, { route: '/a' }), { name: 'lag', help: 'Lag', type: 'gauge', aggregator: 'max', values: [{ value: 9, labels: {} }] }] }
  ]) + render([{ name: 'cluster_workers_alive', help: 'Alive', type: 'gauge', values: [{ value: 2 }] }])
  t.match(text, /requests_total\{route="\/"\} 7\n/)
  t.match(text, /requests_total\{route="\/a"\} 1\n/)
  t.match(text, /lag 9\n/)
  t.notMatch(text, /^start/m, 'omit')
  t.match(text, /# TYPE cluster_workers_alive gauge\ncluster_workers_alive 2\n$/)
})

t.test('summaries are never summed: each worker keeps a worker label; labels and help are escaped', async (t) => {
  const text = aggregate([
    { id: '0', metrics: [{ name: 'q', help: 'line\none', type: 'summary', values: [{ value: 1, labels: { quantile: 0.5, path: 'a"b' } }] }] },
    { id: '1', metrics: [{ name: 'q', help: 'line\none', type: 'summary', values: [{ value: 2, labels: { quantile: 0.5, path: 'a"b' } }] }] }
  ])
  t.match(text, /# HELP q line\\none\n/)
  t.match(text, /q\{quantile="0.5",path="a\\"b",worker="0"\} 1\n/)
  t.match(text, /q\{quantile="0.5",path="a\\"b",worker="1"\} 2\n/)
})

t.test('nothing to render is no text at all, so the parts join without a blank line', async (t) => {
  t.equal(aggregate([]), '')
  t.equal(render([]), '')
  t.equal(aggregate([{ id: '0', metrics: [counter(1)] }]) + render([]), '# HELP requests_total Requests\n# TYPE requests_total counter\nrequests_total 1\n')
})
