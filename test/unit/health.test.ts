import t from 'tap'
import { buildHealth } from '../../lib/primary/monitoring/report.js'
import { Slot } from '../../lib/primary/supervision/slot.js'

const slots = (): Slot[] => [0, 1].map((id) => new Slot(id, () => {}))

t.test('a given-up slot keeps health degraded while a retry of it starts, and ok once it is ready', async (t) => {
  const [ok, flaky] = slots() as [Slot, Slot]
  for (const slot of [ok, flaky]) { slot.apply('fork'); slot.apply('listening') }
  t.match(buildHealth([ok, flaky], { maxRestarts: 2 }), { status: 'ok', alive: 2, warnings: [] })
  flaky.apply('crash')
  for (let i = 0; i < 3; i++) flaky.exited(true)
  flaky.apply('give-up')
  t.match(buildHealth([ok, flaky], { maxRestarts: 2 }), { status: 'degraded', warnings: [/worker 1 gave up/] })
  flaky.apply('fork')
  t.match(buildHealth([ok, flaky], { maxRestarts: 2 }), { status: 'degraded', warnings: [/worker 1 gave up/] }, 'retrying is not recovered')
  flaky.apply('listening')
  t.match(buildHealth([ok, flaky], { maxRestarts: 2 }), { status: 'ok', warnings: [] }, 'ready again')
})

t.test('fewer than half alive, or recycling stopped, is degraded too', async (t) => {
  const [a, b] = slots() as [Slot, Slot]
  a.apply('fork')
  a.apply('listening')
  t.match(buildHealth([a, b], { maxRestarts: 10 }), { status: 'ok', alive: 1 }, 'half alive is not fewer than half')
  a.apply('crash')
  t.match(buildHealth([a, b], { maxRestarts: 10 }), { status: 'degraded', warnings: ['only 0 of 2 workers alive'] })
  a.apply('fork')
  a.apply('listening')
  b.apply('fork')
  b.apply('listening')
  b.stop('recycling', 'starts above maxMemory (rss 2 > 1 bytes)')
  t.match(buildHealth([a, b], { maxRestarts: 10 }), { status: 'degraded', warnings: ['worker 1 starts above maxMemory (rss 2 > 1 bytes): memory recycling stopped'] })
})
