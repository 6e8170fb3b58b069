import t from 'tap'
import { Correlator } from '../../lib/common/correlator.js'

t.test('answers settle their own request; late answers are dropped; a group can be cancelled', async (t) => {
  const correlator = new Correlator<string>()
  const sent: number[] = []
  const a = correlator.request((id) => sent.push(id), 1000, () => new Error('timeout'), 'worker-a')
  const b = correlator.request((id) => sent.push(id), 1000, () => new Error('timeout'), 'worker-b')
  correlator.settle(sent[1] as number, 'for b')
  correlator.settle(sent[0] as number, 'for a')
  t.same(await Promise.all([a, b]), ['for a', 'for b'])
  correlator.settle(sent[0] as number, 'again') // already settled: nothing happens

  const c = correlator.request(() => {}, 1000, () => new Error('timeout'), 'worker-a')
  const d = correlator.request(() => {}, 1000, () => new Error('timeout'), 'worker-b')
  correlator.cancel(new Error('worker-a exited'), 'worker-a')
  await t.rejects(c, /worker-a exited/)
  correlator.cancel(new Error('all gone'))
  await t.rejects(d, /all gone/)
})

t.test('a request unanswered within its timeout rejects with the error given', async (t) => {
  const correlator = new Correlator<string>()
  await t.rejects(correlator.request(() => {}, 20, () => new Error('no answer within 20 ms')), /no answer within 20 ms/)
})
