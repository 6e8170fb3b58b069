import t from 'tap'
import { chooseBalancing } from '../../lib/primary/supervision/balancing.js'

const address = { port: 3000, host: '0.0.0.0' }

t.test('round-robin is taken as asked, everywhere', async (t) => {
  t.same(chooseBalancing('round-robin', address, 0, 'darwin', '20.0.0'), { mode: 'round-robin' })
})

t.test('reuseport and auto: reuseport on Linux with Node >= 22.12, a fixed port and an address', async (t) => {
  for (const requested of ['reuseport', 'auto'] as const) {
    for (const node of ['22.12.0', '22.23.5', '24.22.3', '26.12.1']) t.same(chooseBalancing(requested, address, 0, 'linux', node), { mode: 'reuseport' }, `${requested} on ${node}`)
  }
})

t.test('where it cannot work: round-robin and the reason', async (t) => {
  const cases: Array<[Parameters<typeof chooseBalancing>, RegExp]> = [
    [['reuseport', address, 0, 'darwin', '24.0.0'], /^balancing reuseport: SO_REUSEPORT balancing needs Linux \(this is darwin\); using round-robin$/],
    [['auto', address, 0, 'linux', '22.11.0'], /^balancing auto: reusePort needs Node >= 22\.12 \(this is 22\.11\.0\)/],
    [['reuseport', address, 0, 'linux', '20.20.2'], /needs Node >= 22\.12 \(this is 20\.20\.2\)/],
    [['reuseport', { port: 0, host: '0.0.0.0' }, 0, 'linux', '24.0.0'], /port 0 would give each worker a port of its own/],
    [['reuseport', { port: 3000, host: 'localhost' }, 0, 'linux', '24.0.0'], /host "localhost"/],
    [['reuseport', address, 1, 'linux', '24.0.0'], /^balancing reuseport: the socket systemd passed \(socket activation\) is one socket, which the primary serves to every worker; using round-robin$/]
  ]
  for (const [args, reason] of cases) {
    const chosen = chooseBalancing(...args)
    t.equal(chosen.mode, 'round-robin')
    t.match(chosen.reason, reason)
  }
})
