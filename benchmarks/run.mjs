// `npm run bench` runs every scenario; `npm run bench -- overhead` one. Each scenario's variants
// run as separate server processes, a fresh one per measurement, in interleaved rounds (ABBA)
// after a warm-up; the table gives medians and the ratio against the baseline measured in the
// same run, and is appended to benchmarks/RESULTS.md with the machine's facts.
// Options: --rounds N (default 6), --duration S per measurement (default 5), --warmup S (default 3).
import { readdir } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { appendResults, factsLine, fmt, interleave, machineFacts, measure, median, treeCpuMs } from './lib.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    'no-write': { type: 'boolean', default: false }
  }
})
const settings = { rounds: Number(values.rounds), duration: Number(values.duration), warmup: Number(values.warmup) }
for (const [name, value] of Object.entries(settings)) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a whole number >= 1, got ${values[name]}`)
}

const available = (await readdir(new URL('scenarios/', import.meta.url))).filter((file) => file.endsWith('.mjs')).map((file) => file.slice(0, -4))
const chosen = positionals.length > 0 ? positionals : available
for (const name of chosen) {
  if (!available.includes(name)) throw new Error(`unknown benchmark ${name}: expected one of ${available.join(', ')}`)
}

const facts = machineFacts()
console.log(factsLine(facts))
for (const name of chosen) {
  const { default: scenario } = await import(`./scenarios/${name}.mjs`)
  const markdown = await (scenario.run ?? runThroughput)(scenario, settings)
  console.log(`\n${markdown}`)
  if (!values['no-write']) await appendResults(`### ${scenario.name} — ${factsLine(facts)}\n\n${markdown}`)
}

/**
 * The default shape of a scenario: throughput of each variant, interleaved, vs the baseline. Each
 * measurement gets a fresh server process and its own warm-up: the same server code can settle
 * into a faster or slower JIT state per process (seen here: a plugin server at either ~77k or
 * ~116k instructions per request, under valgrind), so one process per variant for a whole run
 * would make every round repeat one draw.
 */
async function runThroughput (scenario, { rounds, duration, warmup }) {
  const names = Object.keys(scenario.variants)
  const runs = Object.fromEntries(names.map((variant) => [variant, []]))
  for (const order of interleave(names, rounds)) {
    for (const variant of order) {
      const server = await scenario.variants[variant]()
      try {
        await measure(server.port, { ...scenario.load, duration: warmup })
        const pid = server.daemonPid ?? server.child.pid
        const cpuBefore = await treeCpuMs(pid)
        const run = await measure(server.port, { ...scenario.load, duration })
        run.cpuPerRequest = (await treeCpuMs(pid) - cpuBefore) * 1000 / run.total
        runs[variant].push(run)
        console.log(`  ${scenario.name} ${variant}: ${fmt(run.rps)} req/s, p99 ${run.p99} ms, server cpu ${fmt(run.cpuPerRequest, 1)} µs/request, errors ${run.errors}, non-2xx ${run.non2xx}`)
      } finally {
        await server.stop()
      }
    }
  }
  return throughputTable(scenario, runs, { rounds, duration })
}

function throughputTable (scenario, runs, { rounds, duration }) {
  const base = median(runs[scenario.baseline].map((run) => run.rps))
  const lines = [
    `${scenario.description}. ${rounds} interleaved rounds of ${duration} s, medians.`,
    '',
    `| variant | req/s (median) | min–max | p50 ms | p99 ms | errors | non-2xx | ratio of medians | median of per-round ratios vs ${scenario.baseline} | server CPU µs/request (median) | CPU/request vs ${scenario.baseline} |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  const verdicts = []
  const baseRuns = runs[scenario.baseline]
  for (const [variant, list] of Object.entries(runs)) {
    const rps = list.map((run) => run.rps)
    // Each round measured every variant back to back, so a per-round ratio cancels slow drift.
    const ratio = median(list.map((run, round) => run.rps / baseRuns[round].rps))
    lines.push(`| ${variant} | ${fmt(median(rps))} | ${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))} | ` +
      `${median(list.map((run) => run.p50))} | ${median(list.map((run) => run.p99))} | ` +
      `${list.reduce((sum, run) => sum + run.errors, 0)} | ${list.reduce((sum, run) => sum + run.non2xx, 0)} | ` +
      `${fmt(median(rps) / base, 3)} | ${fmt(ratio, 3)} | ${fmt(median(list.map((run) => run.cpuPerRequest)), 1)} | ` +
      `${fmt(median(list.map((run, round) => run.cpuPerRequest / baseRuns[round].cpuPerRequest)), 3)} |`)
    if (variant !== scenario.baseline && scenario.goal && (scenario.goal.variant ?? variant) === variant) {
      verdicts.push(`${variant}: ${fmt(ratio, 3)} ${ratio >= scenario.goal.min ? 'meets' : 'MISSES'} the goal (${scenario.goal.text})`)
    }
  }
  // Extra pairs a scenario asks about, e.g. to tell one part's cost from another's.
  for (const [variant, against] of scenario.compare ?? []) {
    const ratio = median(runs[variant].map((run, round) => run.rps / runs[against][round].rps))
    verdicts.push(`${variant} vs ${against}: median of per-round ratios ${fmt(ratio, 3)}`)
  }
  return [...lines, '', ...verdicts.map((verdict) => `- ${verdict}`)].join('\n')
}
