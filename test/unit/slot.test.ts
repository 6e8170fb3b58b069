import t from 'tap'
import { nextState, Slot, SLOT_EVENTS, SLOT_STATES, type SlotEvent, type SlotState } from '../../lib/primary/supervision/slot.js'

// Written out here rather than derived, so a change to the table in lib/ must be made twice.
const EXPECTED: Record<SlotState, Record<SlotEvent, SlotState>> = {
  starting: { fork: 'starting', listening: 'ready', promote: 'ready', drain: 'draining', exit: 'stopped', crash: 'crashed', 'give-up': 'starting' },
  ready: { fork: 'ready', listening: 'ready', promote: 'ready', drain: 'draining', exit: 'stopped', crash: 'crashed', 'give-up': 'ready' },
  draining: { fork: 'draining', listening: 'draining', promote: 'ready', drain: 'draining', exit: 'stopped', crash: 'crashed', 'give-up': 'draining' },
  stopped: { fork: 'starting', listening: 'stopped', promote: 'ready', drain: 'stopped', exit: 'stopped', crash: 'stopped', 'give-up': 'given-up' },
  crashed: { fork: 'starting', listening: 'crashed', promote: 'ready', drain: 'crashed', exit: 'crashed', crash: 'crashed', 'give-up': 'given-up' },
  'given-up': { fork: 'starting', listening: 'given-up', promote: 'ready', drain: 'given-up', exit: 'given-up', crash: 'given-up', 'give-up': 'given-up' }
}

t.test('every (state, event) pair has an answer, the one written down', async (t) => {
  t.equal(SLOT_STATES.length * SLOT_EVENTS.length, 42)
  for (const state of SLOT_STATES) {
    for (const event of SLOT_EVENTS) t.equal(nextState(state, event), EXPECTED[state][event], `${state} --${event}-->`)
  }
})

t.test('a slot reports changes of state and every promotion, nothing else', async (t) => {
  const heard: string[] = []
  const slot = new Slot(0, (slot, from, event) => heard.push(`${from} --${event}--> ${slot.state}`))
  for (const event of ['fork', 'listening', 'listening', 'promote', 'drain', 'give-up', 'crash', 'crash', 'give-up', 'fork'] as const) slot.apply(event)
  t.same(heard, [
    'stopped --fork--> starting',
    'starting --listening--> ready',
    'ready --promote--> ready',
    'ready --drain--> draining',
    'draining --crash--> crashed',
    'crashed --give-up--> given-up',
    'given-up --fork--> starting'
  ])
  t.equal(slot.alive, false)
  slot.apply('listening')
  t.equal(slot.alive, true)
})
