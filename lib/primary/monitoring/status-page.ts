// The monitoring server's status page (`GET /`): one self-contained document, no build step, no
// CDN. It reads /cluster/events with fetch() rather than EventSource, because EventSource cannot
// send the Authorization header a monitoring server beyond loopback requires; the token typed in
// stays in the tab's sessionStorage. Charts are inline SVG drawn from /cluster/history and the
// stream's `history` points.

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>fastify-cluster-kit</title>
<style>
  :root { --fg: #1d2430; --bg: #f7f8fa; --panel: #fff; --line: #e3e6eb; --muted: #5b6473; --ok-bg: #cdeccf; --ok: #14521a; --bad-bg: #f6d0cd; --bad: #7a1610 }
  @media (prefers-color-scheme: dark) {
    :root { --fg: #e4e8ef; --bg: #14171c; --panel: #1d2229; --line: #313842; --muted: #9aa4b2; --ok-bg: #1f4d26; --ok: #b9ecc0; --bad-bg: #5c211c; --bad: #ffcdc7 }
  }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem; color: var(--fg); background: var(--bg) }
  h1 { font-size: 1.2rem; margin: 0 0 .8rem }
  a { color: inherit }
  .bar { display: flex; gap: .6rem 1.2rem; flex-wrap: wrap; align-items: center; margin-bottom: 1rem }
  .badge { padding: .2rem .6rem; border-radius: .8rem; font-weight: 600; background: var(--line) }
  .ok { background: var(--ok-bg); color: var(--ok) } .bad { background: var(--bad-bg); color: var(--bad) }
  .scroll { overflow-x: auto; background: var(--panel); border: 1px solid var(--line); border-radius: .4rem }
  table { border-collapse: collapse; width: 100% }
  th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap }
  th:first-child, td:first-child, td.state { text-align: left }
  td.state.ready { color: var(--ok) } td.state.crashed, td.state.given-up { color: var(--bad) }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: .8rem; margin: 1rem 0 }
  figure { margin: 0; padding: .5rem .6rem; background: var(--panel); border: 1px solid var(--line); border-radius: .4rem }
  figcaption { display: flex; justify-content: space-between; font-size: 12px; color: var(--muted) }
  svg { display: block; width: 100%; height: 90px }
  #incidents { padding: 0; list-style: none; font: 13px/1.5 ui-monospace, monospace; overflow-wrap: anywhere }
  #incidents li { margin: .4rem 0 }
  #incidents .kind { font-weight: 600 }
  #incidents ol { margin: .2rem 0 0; padding-left: 1.5rem; color: #555 }
  h2 { font-size: 1rem; margin: 1.2rem 0 .3rem }
  #events { list-style: none; padding: 0; margin: 1rem 0; max-height: 16rem; overflow: auto; font: 12px/1.5 ui-monospace, monospace; overflow-wrap: anywhere }
  input { width: 14rem; max-width: 60vw } small, .legend { color: var(--muted) }
  .legend span { margin-right: .6rem }
</style>
</head>
<body>
<h1>fastify-cluster-kit</h1>
<div class="bar">
  <span id="health" class="badge">connecting…</span>
  <span><b id="alive">–</b> alive of <b id="expected">–</b></span>
  <span>last reload: <b id="last-reload">none</b></span>
  <span id="rollout" hidden>rollout: <b id="rollout-phase"></b> <span id="rollout-message"></span></span>
  <span id="connection"><small>stream: connecting</small></span>
</div>
<div class="bar"><span>store: <b id="store">–</b></span></div>
<div class="scroll"><table>
  <thead><tr><th>worker</th><th>pid</th><th>state</th><th>uptime</th><th>restarts</th><th>RSS</th><th>CPU</th><th>loop p99</th><th>loop use</th><th>req/s</th><th>in flight</th><th>requests</th></tr></thead>
  <tbody id="workers"></tbody>
</table></div>
<div class="charts">
  <figure><figcaption><span>requests/s</span><span id="max-rps"></span></figcaption><svg id="chart-rps" viewBox="0 0 300 90" preserveAspectRatio="none"></svg></figure>
  <figure><figcaption><span>request latency p99 (ms)</span><span id="max-latencyP99"></span></figcaption><svg id="chart-latencyP99" viewBox="0 0 300 90" preserveAspectRatio="none"></svg></figure>
  <figure><figcaption><span>event-loop delay p99 (ms)</span><span id="max-loopP99"></span></figcaption><svg id="chart-loopP99" viewBox="0 0 300 90" preserveAspectRatio="none"></svg></figure>
  <figure><figcaption><span>RSS per worker (MiB)</span><span id="max-rss"></span></figcaption><svg id="chart-rss" viewBox="0 0 300 90" preserveAspectRatio="none"></svg></figure>
</div>
<div class="legend" id="legend"></div>
<div class="bar" style="margin-top:1rem">
  <label>token <input id="token" type="password" autocomplete="off" placeholder="CLUSTER_MONITORING_TOKEN"></label>
  <button id="reload">Rolling reload</button>
  <span id="reload-result"></span>
</div>
<h2>Incidents</h2>
<ul id="incidents"><li>none</li></ul>
<h2>Events</h2>
<ul id="events"></ul>
<small><a href="cluster/stats">stats</a> · <a href="cluster/health">health</a> · <a href="cluster/history">history</a> · <a href="metrics">metrics</a> · <a href="cluster/events">events</a></small>
<script>
'use strict'
const $ = (id) => document.getElementById(id)
const tokenInput = $('token')
tokenInput.value = sessionStorage.getItem('fck-token') ?? ''
tokenInput.addEventListener('change', () => { sessionStorage.setItem('fck-token', tokenInput.value); connect() })
const auth = () => tokenInput.value ? { authorization: 'Bearer ' + tokenInput.value } : {}

const mib = (bytes) => bytes == null ? '–' : (bytes / 1048576).toFixed(1) + ' MiB'
const fixed = (value, digits, unit) => value == null ? '–' : value.toFixed(digits) + unit
function duration (seconds) {
  if (seconds == null) return '–'
  const s = Math.floor(seconds)
  return s >= 3600 ? Math.floor(s / 3600) + 'h ' + Math.floor(s % 3600 / 60) + 'm' : s >= 60 ? Math.floor(s / 60) + 'm ' + s % 60 + 's' : s + 's'
}

let points = []
let capacity = 450
const latestRps = () => new Map((points.at(-1)?.workers ?? []).map((w) => [w.id, w.rps]))

let reloadRequestedAt = Infinity
function showLastReload (last) {
  $('last-reload').textContent = last == null ? 'none'
    : (last.ok ? 'ok in ' + last.durationMs + ' ms' : 'failed: ' + last.reason) + ' at ' + new Date(last.at).toLocaleTimeString()
  // A reload that ended after this page asked for it: its "reloading N workers" is stale, even
  // when the answer to the request came after the reload's own event.
  if (last != null && Date.parse(last.at) >= reloadRequestedAt) $('reload-result').textContent = ''
}

function showStore (s) {
  if (s == null) return
  const evicted = s.evictions.clientLimit + s.evictions.storeFull === 0 ? 'none evicted'
    : 'evicted ' + s.evictions.clientLimit + " over a client's limit, " + s.evictions.storeFull + ' when full'
  $('store').textContent = s.sessions + ' sessions (' + s.emptySessions + ' empty) from ' + s.clients + ' clients, ' +
    mib(s.sessionBytes) + ', ' + s.counters + ' rate-limit counters; ' + evicted
}

/** A canary rollout's phase and progress, shown while it runs. */
function showRollout (progress) {
  $('rollout').hidden = progress == null
  $('rollout-phase').textContent = progress?.phase ?? ''
  $('rollout-message').textContent = progress?.message ?? ''
}

function render (stats) {
  showLastReload(stats.lastReload)
  showRollout(stats.rollout)
  showStore(stats.store)
  showIncidents(stats.workers)
  $('alive').textContent = stats.alive
  $('expected').textContent = stats.expected
  const health = $('health')
  health.textContent = stats.healthy ? 'healthy' : 'degraded' + (stats.warnings.length ? ': ' + stats.warnings.join('; ') : '')
  health.className = 'badge ' + (stats.healthy ? 'ok' : 'bad')
  const rps = latestRps()
  const rows = stats.workers.map((w) => {
    const row = document.createElement('tr')
    row.dataset.slot = w.id
    const cells = [
      ['id', w.id], ['pid', w.pid ?? '–'], ['state', w.state], ['uptime', duration(w.uptime)], ['restarts', w.restarts],
      ['rss', mib(w.memory?.rss)], ['cpu', fixed(w.cpu, 1, ' %')], ['p99', fixed(w.eventLoop?.p99, 1, ' ms')],
      ['utilization', fixed(w.eventLoop == null ? null : w.eventLoop.utilization * 100, 0, ' %')],
      ['rps', fixed(rps.get(w.id), 1, '')], ['inflight', w.requests?.inFlight ?? '–'], ['requests', w.requests?.total ?? '–']
    ]
    for (const [name, value] of cells) {
      const cell = document.createElement('td')
      cell.className = name + (name === 'state' ? ' ' + value : '')
      cell.textContent = value
      row.append(cell)
    }
    return row
  })
  $('workers').replaceChildren(...rows)
}

const COLORS = ['#3b82f6', '#f97316', '#10b981', '#a855f7', '#ef4444', '#eab308', '#06b6d4', '#ec4899']
const SVG = 'http://www.w3.org/2000/svg'
function drawCharts () {
  const ids = [...new Set(points.flatMap((p) => p.workers.map((w) => w.id)))].sort((a, b) => a - b)
  const first = points[0]?.t ?? 0
  const span = Math.max(1, (points.at(-1)?.t ?? 0) - first)
  for (const [key, scale, unit] of [['rps', 1, ''], ['latencyP99', 1, ' ms'], ['loopP99', 1, ' ms'], ['rss', 1 / 1048576, ' MiB']]) {
    const values = points.flatMap((p) => p.workers.map((w) => w[key])).filter((v) => v != null).map((v) => v * scale)
    const max = Math.max(1e-9, ...values)
    $('max-' + key).textContent = values.length ? 'max ' + (max < 10 ? max.toFixed(1) : Math.round(max)) + unit : ''
    const lines = ids.map((id, i) => {
      const coords = points.flatMap((p) => {
        const value = p.workers.find((w) => w.id === id)?.[key]
        return value == null ? [] : [((p.t - first) / span * 300).toFixed(1) + ',' + (88 - value * scale / max * 84).toFixed(1)]
      })
      const line = document.createElementNS(SVG, 'polyline')
      line.setAttribute('points', coords.join(' '))
      line.setAttribute('fill', 'none')
      line.setAttribute('stroke', COLORS[i % COLORS.length])
      line.setAttribute('stroke-width', '1.5')
      line.setAttribute('vector-effect', 'non-scaling-stroke')
      line.dataset.worker = id
      return line
    })
    $('chart-' + key).replaceChildren(...lines)
  }
  $('legend').replaceChildren(...ids.map((id, i) => Object.assign(document.createElement('span'), { textContent: '■ worker ' + id, style: 'color:' + COLORS[i % COLORS.length] })))
}

/** An event as a sentence a person reads. */
function describe (name, d) {
  switch (name) {
    case 'worker:ready': return 'worker ' + d.id + ' ready (pid ' + d.pid + ')'
    case 'worker:exit': return 'worker ' + d.id + ' (pid ' + d.pid + ') ' + (d.state === 'retired' ? 'retired' : d.state) +
      (d.reason ? ': ' + d.reason : d.signal ? ': signal ' + d.signal : d.code ? ': exit code ' + d.code : '')
    case 'worker:restart': return 'worker ' + d.id + ' restarting (restart ' + d.restarts + (d.delay ? ', after ' + d.delay + ' ms' : '') + ')'
    case 'worker:recycle': return 'worker ' + d.id + ' (pid ' + d.pid + ') being replaced: ' + d.reason
    case 'restart-limit': return 'worker ' + d.id + ' gave up after ' + d.earlyCrashes + ' early crashes in a row'
    case 'reload:start': return 'rolling reload of ' + d.slots + ' workers started'
    case 'reload:phase': return 'rolling reload, ' + d.phase + ': ' + d.message
    case 'reload:done': return 'rolling reload done in ' + d.durationMs + ' ms'
    case 'reload:failed': return 'rolling reload failed after ' + d.durationMs + ' ms: ' + d.reason
    case 'unhealthy': return 'cluster degraded: ' + d.warnings.join('; ')
    case 'healthy': return 'cluster healthy again'
    default: return name + ' ' + JSON.stringify(d)
  }
}

/** The incidents the slots keep (the first and the latest each), newest first, with their frames. */
function showIncidents (workers) {
  const seen = new Map()
  for (const w of workers) for (const i of [w.incidents?.first, w.incidents?.last]) if (i) seen.set(i.at + i.pid, i)
  const items = [...seen.values()].sort((a, b) => b.at.localeCompare(a.at)).map((i) => {
    const item = document.createElement('li')
    item.dataset.pid = i.pid
    const head = document.createElement('div')
    head.append(new Date(i.at).toLocaleTimeString() + '  worker ' + i.id + ' (pid ' + i.pid + ')  ',
      Object.assign(document.createElement('span'), { className: 'kind', textContent: i.kind }), '  ' + i.reason)
    item.append(head)
    if (i.frames.length) {
      const frames = document.createElement('ol')
      for (const f of i.frames) frames.append(Object.assign(document.createElement('li'), { textContent: f.function + '  ' + f.file + ':' + f.line + ':' + f.column }))
      item.append(frames)
    }
    return item
  })
  $('incidents').replaceChildren(...(items.length ? items : [Object.assign(document.createElement('li'), { textContent: 'none' })]))
}

function logEvent (name, detail) {
  const item = document.createElement('li')
  item.textContent = new Date().toLocaleTimeString() + '  ' + describe(name, detail)
  $('events').prepend(item)
  while ($('events').children.length > 200) $('events').lastChild.remove()
  if (name === 'reload:phase') showRollout(detail)
  if (name === 'reload:done' || name === 'reload:failed') {
    showLastReload({ ...detail, at: new Date().toISOString() })
    showRollout(null)
  }
}

let current
async function connect () {
  current?.abort()
  const controller = current = new AbortController()
  for (let wait = 1000; !controller.signal.aborted; wait = Math.min(wait * 2, 15000)) {
    try {
      const past = await fetch('cluster/history', { headers: auth(), signal: controller.signal })
      if (past.ok) ({ points, capacity } = await past.json())
      const response = await fetch('cluster/events', { headers: auth(), signal: controller.signal })
      if (!response.ok) throw new Error(response.status === 401 || response.status === 403 ? 'the token is missing or wrong' : 'HTTP ' + response.status)
      $('connection').replaceChildren(Object.assign(document.createElement('small'), { textContent: 'stream: live' }))
      drawCharts()
      wait = 1000
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end
        while ((end = buffer.indexOf('\\n\\n')) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.*)$/m.exec(frame)?.[1]
          const data = /^data: (.*)$/m.exec(frame)?.[1]
          if (event === undefined || data === undefined) continue
          if (event === 'stats') render(JSON.parse(data))
          else if (event === 'history') {
            points.push(JSON.parse(data))
            if (points.length > capacity) points.shift()
            drawCharts()
          } else logEvent(event, JSON.parse(data))
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return
      $('connection').replaceChildren(Object.assign(document.createElement('small'), { textContent: 'stream: ' + error.message + ', retrying' }))
    }
    await new Promise((resolve) => setTimeout(resolve, wait))
  }
}

$('reload').addEventListener('click', async () => {
  const result = $('reload-result')
  if (!tokenInput.value) tokenInput.focus()
  result.textContent = 'requesting…'
  reloadRequestedAt = Date.now()
  try {
    const response = await fetch('cluster/restart', { method: 'POST', headers: auth() })
    const body = await response.json()
    result.textContent = response.status === 202 ? 'reloading ' + body.workers + ' workers'
      : response.status === 401 ? '401: type the monitoring token first' : response.status + ': ' + body.message
  } catch (error) {
    result.textContent = error.message
  }
})

connect()
</script>
</body>
</html>
`
