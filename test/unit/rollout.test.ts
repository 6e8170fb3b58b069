import { EventEmitter } from 'node:events'
import t from 'tap'
import { createLogger } from '../../lib/primary/log.js'
import { Rollout } from '../../lib/primary/supervision/rollout.js'
import { Slot, type WorkerEntry } from '../../lib/primary/supervision/slot.js'
import type { CanaryOptions } from '../../lib/primary/options.js'
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
      isDead: () => false,
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

function setup (slots: number, canary?: CanaryOptions): { rollout: Rollout, forks: Fake[], events: string[], slots: Slot[], stopping: { now: boolean } } {
  const events: string[] = []
  const emitter = new EventEmitter<ClusterEvents>()
  for (const name of ['reload:start', 'reload:done', 'reload:failed'] as const) emitter.on(name, () => events.push(name))
  emitter.on('reload:phase', ({ phase }) => events.push(`phase ${phase}`))
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
    canary,
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

const CANARY: CanaryOptions = { enabled: true, workers: 1, bake: 40, minRequests: 10, ratio: 2, errorFloor: 0.01, latencyFloor: 50, loopFloor: 20 }

/** A heartbeat of `fake`: its totals since start and its window's p99s; the rollout hears it as the supervisor passes it on. */
function beat (rollout: Rollout, fake: Fake | undefined, requests: { total: number, errors?: number, latencyP99?: number, loopP99?: number }): void {
  if (fake === undefined) throw new Error('no such fork')
  fake.entry.sample = {
    rss: 0,
    heapUsed: 0,
    heapTotal: 0,
    cpu: { user: 0, system: 0, percent: 0 },
    eventLoop: { p50: 0, p99: requests.loopP99 ?? 1, max: 0, utilization: 0 },
    requests: { total: requests.total, inFlight: 0, latencyP99: requests.latencyP99 ?? 5, errors: requests.errors ?? 0 }
  }
  rollout.heard(fake.entry)
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('canary passed: surge (a canary beside every old worker) -> bake -> judge -> roll (the canary keeps its slot)', async (t) => {
  const { rollout, forks, events, slots } = setup(2, CANARY)
  const running = rollout.begin()
  await tick()
  t.equal(forks.length, 3, 'one canary, and no old worker asked to stop')
  t.equal(slots[0]?.worker, forks[0]?.entry, 'the canary is not its slot\'s worker while it bakes')
  t.same(forks[0]?.said, [])
  forks[2]?.listen()
  await tick()
  t.match(rollout.progress, { phase: 'bake', message: /^baking 1 canary worker\(s\): 0 of 10 requests, \d+ s left$/, canaries: [{ id: '0', pid: 102 }] })
  for (const i of [0, 1, 2]) t.same(forks[i]?.said, ['fck:spread'], 'every listening worker closes a share of its connections')
  beat(rollout, forks[0], { total: 100 })
  beat(rollout, forks[1], { total: 100 })
  beat(rollout, forks[2], { total: 40, latencyP99: 8 })
  t.match(rollout.progress, { message: /40 of 10 requests/ })
  await sleep(60)
  t.equal(forks.length, 3, 'the canary takes slot 0 without a new fork')
  t.equal(slots[0]?.worker, forks[2]?.entry)
  t.same(forks[0]?.said, ['fck:spread', 'fck:spread', 'fck:shutdown'], 'the spread ends; slot 0\'s old worker drains')
  forks[0]?.exit()
  await tick()
  forks[3]?.listen()
  await tick()
  forks[1]?.exit()
  const result = await running
  t.match(result, { ok: true, canary: { passed: true, canary: { requests: 40, errorShare: 0, latencyP99: 8 }, old: { requests: 200, latencyP99: 5 } } })
  t.match(result.canary?.reason, /^canary passed over 40 requests: 5xx share 0\.0% \(old workers 0\.0%\), request p99 8 ms \(old workers 5 ms\), event-loop delay p99 1 ms \(old workers 1 ms\)$/)
  t.same(events, ['reload:start', 'phase surge', 'phase bake', 'phase judge', 'phase roll', '0: ready --promote--> ready', '1: ready --promote--> ready', 'reload:done'])
  t.equal(rollout.progress, undefined, 'no progress once done')
})

t.test('canary rejected on its 5xx share: abort; the canary drains, the old workers keep their slots, health says why until a reload succeeds', async (t) => {
  const { rollout, forks, events, slots } = setup(2, CANARY)
  const running = rollout.begin()
  await tick()
  forks[2]?.listen()
  await tick()
  beat(rollout, forks[0], { total: 200, errors: 1 })
  beat(rollout, forks[2], { total: 50, errors: 25 })
  await sleep(60)
  t.same(forks[2]?.said, ['fck:spread', 'fck:shutdown'], 'the canary is retired')
  forks[2]?.exit()
  const result = await running
  t.match(result, { ok: false, reason: /^canary rejected: canary 5xx share 50\.0% over 50 requests in 0 s is above 1\.0% \(2 × the old workers' 0\.5% over 200, floor 1\.0%\)$/, canary: { passed: false, canary: { errorShare: 0.5 } } })
  t.equal(slots[0]?.worker, forks[0]?.entry)
  t.equal(slots[1]?.worker, forks[1]?.entry)
  t.same(forks[0]?.said, ['fck:spread', 'fck:spread'], 'no old worker was asked to stop')
  t.same(events, ['reload:start', 'phase surge', 'phase bake', 'phase judge', 'phase abort', 'reload:failed'])
  t.match(rollout.warning, /^the release on disk failed its canary at \S+ \(canary 5xx share 50\.0% .*\); .*fix the release and reload$/)

  // The next reload (a fixed release) passes its canary:
  const next = rollout.begin()
  await tick()
  forks[3]?.listen()
  await tick()
  beat(rollout, forks[3], { total: 20 })
  await sleep(60)
  forks[0]?.exit()
  await tick()
  forks[4]?.listen()
  await tick()
  forks[1]?.exit()
  t.match(await next, { ok: true })
  t.equal(rollout.warning, undefined, 'a reload that succeeds clears it')
})

t.test('canary rejected on latency and on event-loop delay, each past its ratio and its floor', async (t) => {
  for (const [canary, old, reason] of [
    [{ latencyP99: 300 }, { latencyP99: 100 }, /^canary rejected: canary request p99 300 ms over 100 requests in 0 s is above 200 ms/],
    [{ loopP99: 45 }, { loopP99: 5 }, /^canary rejected: canary event-loop delay p99 45 ms over 100 requests in 0 s is above 20 ms \(2 × the old workers' 5 ms over 100, floor 20 ms\)/]
  ] as const) {
    const { rollout, forks } = setup(1, CANARY)
    const running = rollout.begin()
    await tick()
    forks[1]?.listen()
    await tick()
    beat(rollout, forks[0], { total: 100, ...old })
    beat(rollout, forks[1], { total: 100, ...canary })
    await sleep(60)
    forks[1]?.exit()
    t.match(await running, { ok: false, reason })
  }
  const { rollout, forks } = setup(1, CANARY)
  const running = rollout.begin()
  await tick()
  forks[1]?.listen()
  await tick()
  beat(rollout, forks[0], { total: 100, latencyP99: 2 })
  beat(rollout, forks[1], { total: 100, latencyP99: 40, loopP99: 15 })
  await sleep(60)
  forks[0]?.exit()
  t.match(await running, { ok: true }, '20 times slower but under the floors: an idle cluster is not judged on noise')
})

t.test('a bake short of requests is extended once, then the reload is aborted', async (t) => {
  const { rollout, forks, events } = setup(1, CANARY)
  const running = rollout.begin()
  await tick()
  forks[1]?.listen()
  await tick()
  beat(rollout, forks[1], { total: 3 })
  await sleep(50)
  t.match(rollout.progress, { phase: 'bake', message: /^baking 1 canary worker\(s\) \(extended once: too few requests\): 3 of 10 requests/ })
  await sleep(50)
  forks[1]?.exit()
  t.match(await running, { ok: false, reason: 'canary rejected: the canaries served 3 of the 10 requests needed to judge them (canary.minRequests), in a bake extended once' })
  t.same(events, ['reload:start', 'phase surge', 'phase bake', 'phase judge', 'phase bake', 'phase judge', 'phase abort', 'reload:failed'])
})

t.test('a canary lost during the bake, or one that fails to start, aborts at once', async (t) => {
  const lost = setup(1, { ...CANARY, bake: 60_000 })
  const running = lost.rollout.begin()
  await tick()
  lost.forks[1]?.listen()
  await tick()
  lost.forks[1]!.entry.lost = { at: '', id: '0', pid: 101, kind: 'crash', reason: 'TypeError: boom at app.js:3', frames: [] }
  lost.forks[1]?.exit()
  t.match(await running, { ok: false, reason: 'canary rejected: canary worker 0 (pid 101) was lost during the bake: TypeError: boom at app.js:3' }, 'without waiting for the bake\'s end')
  t.equal(lost.slots[0]?.worker, lost.forks[0]?.entry)

  const failed = setup(2, { ...CANARY, workers: 2 })
  const starting = failed.rollout.begin()
  await tick()
  t.equal(failed.forks.length, 4, 'two canaries, both beside the old workers')
  failed.forks[2]?.listen()
  failed.forks[3]?.fail('exited (code 1) before listening')
  failed.forks[3]?.exit()
  await tick()
  t.same(failed.forks[2]?.said, ['fck:shutdown'], 'the canary that started is retired')
  failed.forks[2]?.exit()
  t.match(await starting, { ok: false, reason: 'canary rejected: canary worker 1 failed to start: exited (code 1) before listening' })
  t.match(failed.rollout.warning, /failed its canary/)
})

t.test('the cluster stopping during a surge or a bake ends the reload without a verdict on the release', async (t) => {
  for (const when of ['surge', 'bake'] as const) {
    const { rollout, forks, stopping } = setup(1, { ...CANARY, bake: 60_000 })
    const running = rollout.begin()
    await tick()
    if (when === 'bake') {
      forks[1]?.listen()
      await tick()
    }
    stopping.now = true
    // The stop drains every worker, the canary included.
    if (when === 'surge') forks[1]?.fail('exited (signal SIGTERM) before listening')
    forks[1]?.exit()
    t.match(await running, { ok: false, reason: /shutting down/, canary: undefined }, when)
    t.equal(rollout.warning, undefined, `${when}: the release is not called failed`)
  }
})
