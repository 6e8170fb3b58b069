import { readFileSync, writeFileSync } from 'node:fs'
import t from 'tap'
import type { Setting } from '../../lib/common/config.js'
import { CANARY_SETTINGS, SICK_SETTINGS } from '../../lib/primary/policy-settings.js'
import { BOOT_SETTINGS, MONITORING_SETTINGS, PRIMARY_STORE_SETTINGS } from '../../lib/primary/settings.js'
import { METRICS_SETTINGS, PLUGIN_SETTINGS } from '../../lib/worker/options.js'
import { SHARED_SETTINGS } from '../../lib/shared-state/options.js'

// README's configuration tables are generated from the settings' declarations, so a default,
// a variable or a bound cannot change in one place only. After changing a declaration:
// UPDATE_README=1 npx tap test/unit/config-table.test.ts

const README = new URL('../../README.md', import.meta.url)
const START = '<!-- settings:start (generated from the settings\' declarations by test/unit/config-table.test.ts) -->'
const END = '<!-- settings:end -->'

function table (settings: Array<Setting<unknown>>): string {
  const code = (name: string | undefined): string => name === undefined ? '—' : `\`${name}\``
  return [
    '| option | environment | default | accepts | what it does |',
    '| --- | --- | --- | --- | --- |',
    ...settings.map((s) => `| ${code(s.option)} | ${s.envText ?? code(s.env)} | ${s.shown} | ${s.kind.expectedInCode ?? s.kind.expected} | ${s.doc} |`)
  ].join('\n')
}

function generate (): string {
  return [
    START,
    '#### `bootCluster(factory, options)`',
    '',
    table([...Object.values(BOOT_SETTINGS), ...Object.values(MONITORING_SETTINGS), ...Object.values(PRIMARY_STORE_SETTINGS), ...Object.values(SICK_SETTINGS), ...Object.values(CANARY_SETTINGS)]),
    '',
    '#### `clusterPlugin` (under bootCluster: its `plugin` option)',
    '',
    table([...Object.values(PLUGIN_SETTINGS), ...Object.values(METRICS_SETTINGS), ...Object.values(SHARED_SETTINGS)]),
    END
  ].join('\n')
}

t.test('README\'s configuration tables are the settings\' declarations', async (t) => {
  const readme = readFileSync(README, 'utf8')
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  t.ok(start >= 0 && end > start, 'README has the generated block')
  const expected = generate()
  if (process.env.UPDATE_README === '1') writeFileSync(README, readme.slice(0, start) + expected + readme.slice(end + END.length))
  else t.equal(readme.slice(start, end + END.length), expected, 'regenerate with UPDATE_README=1 npx tap test/unit/config-table.test.ts')
})

t.test('every setting says what it does, its default and what it accepts', async (t) => {
  const all: Array<Setting<unknown>> = [BOOT_SETTINGS, MONITORING_SETTINGS, PRIMARY_STORE_SETTINGS, SICK_SETTINGS, CANARY_SETTINGS, PLUGIN_SETTINGS, METRICS_SETTINGS, SHARED_SETTINGS]
    .flatMap((group) => Object.values(group))
  for (const s of all) {
    const name = s.option ?? s.env ?? '?'
    t.ok(s.option !== undefined || s.env !== undefined, `${name}: an option or a variable`)
    t.ok(s.doc.length > 0 && s.shown.length > 0 && s.kind.expected.length > 0, `${name}: documented`)
    t.notOk(/\|/.test(s.doc + s.shown + s.kind.expected), `${name}: no | to break the table`)
    if (s.default !== undefined) t.equal(s.kind.parse(s.default, false), s.default, `${name}: its default is a value it accepts`)
  }
})
