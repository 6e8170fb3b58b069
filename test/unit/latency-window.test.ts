import t from 'tap'
import { RequestDurations } from '../../lib/worker/metrics.js'

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

t.test('the window p99 reads the buckets as histogram_quantile does, and each call starts a new window', async (t) => {
  const durations = new RequestDurations(BOUNDS)
  t.equal(durations.windowQuantile(0.99), 0, 'no request: 0')
  const route = durations.forRoute('/')
  for (let i = 0; i < 98; i++) route.observe('GET', 200, 0.003)
  route.observe('GET', 200, 0.2)
  durations.forRoute('/other').observe('POST', 500, 0.2)
  // Rank 99 of 100 falls in (0.1, 0.25], which holds 2 after 98 below it: 0.1 + 0.15 × 1/2.
  t.equal(Math.round(durations.windowQuantile(0.99) * 1e6) / 1e6, 0.175)
  for (let i = 0; i < 10; i++) route.observe('GET', 200, 0.007)
  t.equal(Math.round(durations.windowQuantile(0.99) * 1e6) / 1e6, 0.00995, 'only the requests since the last call')
  route.observe('GET', 200, 30)
  t.equal(durations.windowQuantile(0.99), 1, 'past the last bound: that bound')
  durations.reset()
  route.observe('GET', 200, 0.003)
  t.ok(durations.windowQuantile(0.99) <= 0.005, 'after a reset it counts from zero')
})
