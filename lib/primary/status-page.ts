// The monitoring server's status page (`GET /`): one self-contained document, no build step, no
// CDN. It reads /cluster/events with fetch() rather than EventSource, because EventSource cannot
// send the Authorization header a monitoring server beyond loopback requires; the token typed in
// stays in the tab's sessionStorage.

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastify-cluster-kit</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f7f8fa }
  h1 { font-size: 1.2rem; margin: 0 0 .8rem }
  .bar { display: flex; gap: 1.2rem; flex-wrap: wrap; align-items: center; margin-bottom: 1rem }
  .badge { padding: .2rem .6rem; border-radius: .8rem; font-weight: 600; background: #dfe3ea }
  .ok { background: #cdeccf; color: #14521a } .bad { background: #f6d0cd; color: #7a1610 }
  table { border-collapse: collapse; background: #fff; min-width: 60rem }
  th, td { padding: .35rem .7rem; border-bottom: 1px solid #e3e6eb; text-align: right; white-space: nowrap }
  th:first-child, td:first-child, td.state { text-align: left }
  td.state.ready { color: #14521a } td.state.crashed, td.state.given-up { color: #7a1610 }
  #events { list-style: none; padding: 0; margin: 1rem 0; max-height: 18rem; overflow: auto; font-family: ui-monospace, monospace; font-size: 12px }
  #events li { padding: .1rem 0 }
  input { width: 16rem } small { color: #5b6473 }
</style>
</head>
<body>
<h1>fastify-cluster-kit</h1>
<div class="bar">
  <span id="health" class="badge">connecting…</span>
  <span><b id="alive">–</b> alive of <b id="expected">–</b></span>
  <span>last reload: <b id="last-reload">none</b></span>
  <span id="connection"><small>stream: connecting</small></span>
</div>
<table>
  <thead><tr><th>worker</th><th>pid</th><th>state</th><th>uptime</th><th>restarts</th><th>recycles</th><th>RSS</th><th>CPU</th><th>loop p99</th><th>requests</th></tr></thead>
  <tbody id="workers"></tbody>
</table>
<div class="bar" style="margin-top:1rem">
  <label>token <input id="token" type="password" autocomplete="off" placeholder="CLUSTER_MONITORING_TOKEN"></label>
  <button id="reload">Rolling reload</button>
  <span id="reload-result"></span>
</div>
<ul id="events"></ul>
<small><a href="cluster/stats">stats</a> · <a href="cluster/health">health</a> · <a href="metrics">metrics</a> · <a href="cluster/events">events</a></small>
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

function render (stats) {
  $('alive').textContent = stats.alive
  $('expected').textContent = stats.expected
  const health = $('health')
  health.textContent = stats.healthy ? 'healthy' : 'degraded' + (stats.warnings.length ? ': ' + stats.warnings.join('; ') : '')
  health.className = 'badge ' + (stats.healthy ? 'ok' : 'bad')
  const rows = stats.workers.map((w) => {
    const row = document.createElement('tr')
    row.dataset.slot = w.id
    const cells = [
      ['id', w.id], ['pid', w.pid ?? '–'], ['state', w.state], ['uptime', duration(w.uptime)], ['restarts', w.restarts],
      ['recycles', w.recycles], ['rss', mib(w.memory?.rss)], ['cpu', fixed(w.cpu, 1, ' %')],
      ['p99', fixed(w.eventLoop?.p99, 1, ' ms')], ['requests', w.requests?.total ?? '–']
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

function logEvent (name, detail) {
  const item = document.createElement('li')
  item.textContent = new Date().toLocaleTimeString() + '  ' + name + '  ' + JSON.stringify(detail)
  $('events').prepend(item)
  while ($('events').children.length > 200) $('events').lastChild.remove()
  if (name === 'reload:done') $('last-reload').textContent = 'ok in ' + detail.durationMs + ' ms at ' + new Date().toLocaleTimeString()
  if (name === 'reload:failed') $('last-reload').textContent = 'failed: ' + detail.reason
}

let current
async function connect () {
  current?.abort()
  const controller = current = new AbortController()
  for (let wait = 1000; !controller.signal.aborted; wait = Math.min(wait * 2, 15000)) {
    try {
      const response = await fetch('cluster/events', { headers: auth(), signal: controller.signal })
      if (!response.ok) throw new Error(response.status === 401 || response.status === 403 ? 'the token is missing or wrong' : 'HTTP ' + response.status)
      $('connection').innerHTML = '<small>stream: live</small>'
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
          else logEvent(event, JSON.parse(data))
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return
      $('connection').textContent = ''
      $('connection').append(Object.assign(document.createElement('small'), { textContent: 'stream: ' + error.message + ', retrying' }))
    }
    await new Promise((resolve) => setTimeout(resolve, wait))
  }
}

$('reload').addEventListener('click', async () => {
  const result = $('reload-result')
  result.textContent = 'requesting…'
  try {
    const response = await fetch('cluster/restart', { method: 'POST', headers: auth() })
    const body = await response.json()
    result.textContent = response.status === 202 ? 'reloading ' + body.workers + ' workers' : response.status + ': ' + body.message
  } catch (error) {
    result.textContent = error.message
  }
})

connect()
</script>
</body>
</html>
`
