import { EventEmitter } from 'node:events'
import t from 'tap'
import { createLogger } from '../../lib/primary/log.js'
import { Rollout } from '../../lib/primary/supervision/rollout.js'
import { Slot, type WorkerEntry } from '../../lib/primary/supervision/slot.js'
import type { ClusterEvents } from '../../lib/primary/types.js'

// The reload sequence's states, with workers that are plain objects: each fork returns an entry
// whose readiness and exit the test settles, and whose process records the signals and messages
// the rollout sends it. (The real sequence, with forked workers, is test/cluster-reload.test.ts.)

interface Fake { entry: WorkerEntry, listen: () => void, fail: (why: string) => void, exit: () => void, said: string[] }

function fake (slot: Slot, role: WorkerEntry['role'], pid: number): Fake {
  let listen!: () => void
  let fail!: (error: Error) => void
  let exit!: () => void
  const said: string[] = []
  const entry = {
    slot,
    role,
    readyAt: undefined as number | undefined,
    failure: undefined as string | undefined,
    replaces: undefined,
    ready: new Promise<void>((resolve, reject) => { listen = resolve; fail = reject }),
    exited: new Promise<void>((resolve) => { exit = resolve }),
    worker: {
      process: { pid, kill: (signal: string) => { said.push(signal) }, exitCode: null, signalCode: null },
      isConnected: () => true,
      send: (message: { type: string }) => { said.push(message.type) },
      once: () => {}
    }
  } as unknown as WorkerEntry
  entry.ready.catch(() => {})
  return {
    entry,
    listen: () => { entry.readyAt = Date.now(); listen() },
    fail: (why) => fail(new Error(why)),
    exit,
    said
  }
}

function setup (slots: number): { rollout: Rollout, forks: Fake[], events: string[], slots: Slot[], stopping: { now: boolean } } {
  const events: string[] = []
  const emitter = new EventEmitter<ClusterEvents>()
  for (const name of ['reload:start', 'reload:done', 'reload:failed'] as const) emitter.on(name, () => events.push(name))
  const all = Array.from({ length: slots }, (_, id) => new Slot(id, (slot, from, event) => events.push(`${slot.id}: ${from} --${event}--> ${slot.state}`)))
  const forks: Fake[] = []
  let pid = 100
  for (const slot of all) {
    const first = fake(slot, 'current', pid++)
    first.listen()
    slot.worker = first.entry
    slot.apply('fork')
    slot.apply('listening')
    forks.push(first)
  }
  events.length = 0
  const stopping = { now: false }
  const rollout = new Rollout({
    slots: all,
    fork: (slot, role) => { const next = fake(slot, role, pid++); forks.push(next); return next.entry },
    stopping: () => stopping.now,
    events: emitter,
    gracefulTimeout: 1000,
    log: createLogger('fatal', {}, () => true)
  })
  return { rollout, forks, events, slots: all, stopping }
}

const tick = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

t.test('idle -> each slot in turn: a candidate listens, is promoted, the old worker drains -> idle (done)', async (t) => {
  const { rollout, forks, events, slots } = setup(2)
  const running = rollout.begin()
  t.equal(rollout.running, true)
  t.throws(() => rollout.begin(), { code: 'FCK_RELOAD_IN_PROGRESS' }, 'one at a time')
  await tick()
  t.equal(forks.length, 3, 'one candidate, for slot 0 only')
  t.equal(slots[0]?.candidate, forks[2]?.entry)
  forks[2]?.listen()
  await tick()
  t.same(forks[0]?.said, ['fck:shutdown'], 'the replaced worker is asked to drain')
  t.equal(forks.length, 3, 'slot 1 waits until slot 0\'s old worker has exited')
  forks[0]?.exit()
  await tick()
  t.equal(forks.length, 4, 'then slot 1\'s candidate')
  forks[3]?.listen()
  await tick()
  forks[1]?.exit()
  const result = await running
  t.match(result, { ok: true, workers: [{ id: '0', pid: 102 }, { id: '1', pid: 103 }] })
  t.same(events, ['reload:start', '0: ready --promote--> ready', '1: ready --promote--> ready', 'reload:done'])
  t.equal(rollout.running, false)
  t.match(rollout.last, { ok: true })
})

t.test('a candidate that fails: the reload ends failed, the slots not yet replaced keep their workers', async (t) => {
  const { rollout, forks, events, slots } = setup(2)
  const running = rollout.begin()
  await tick()
  forks[2]?.fail('exited (code 1) before listening')
  const result = await running
  t.match(result, { ok: false, reason: 'worker 0: replacement exited (code 1) before listening' })
  t.equal(slots[0]?.worker, forks[0]?.entry, 'slot 0 keeps its worker')
  t.equal(slots[0]?.candidate, undefined)
  t.equal(forks.length, 3, 'no candidate for slot 1')
  t.same(events, ['reload:start', 'reload:failed'])
  t.match(rollout.last, { ok: false })
})

t.test('the cluster stopping: no reload starts, and a candidate that listens meanwhile is not promoted', async (t) => {
  const { rollout, forks, stopping, slots } = setup(1)
  const running = rollout.begin()
  await tick()
  stopping.now = true
  forks[1]?.listen()
  t.match(await running, { ok: false, reason: /shutting down/ })
  t.equal(slots[0]?.worker, forks[0]?.entry, 'the old worker is still the slot\'s (the stop drains it)')
  t.throws(() => rollout.begin(), { code: 'FCK_SHUTTING_DOWN' })
})
