import { spawn } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { procStat, startCluster, until, type ClusterFixture } from './helpers/cluster.js'

/** The primary's resident memory, from /proc (field 24, in pages). */
function rss (pid: number): number {
  return Number(procStat(pid)[21]) * 4096
}

/** A raw client of /cluster/events that keeps what it received. */
async function openStream (port: number, { headers = '' } = {}): Promise<{ socket: net.Socket, text: () => string }> {
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  socket.write(`GET /cluster/events HTTP/1.1\r\nhost: 127.0.0.1\r\n${headers}\r\n`)
  socket.on('data', (chunk) => { received += chunk.toString() })
  socket.on('error', () => {})
  return { socket, text: () => received }
}

async function metricValue (cluster: ClusterFixture, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${cluster.monitoringPort}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
}

t.test('/cluster/events: 100 concurrent clients all see a kill -9 as worker:exit and the restart; the 101st is turned away', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { sampleInterval: 500 } })
  const clients = await Promise.all(Array.from({ length: 100 }, async () => await openStream(cluster.monitoringPort)))
  t.teardown(() => { for (const { socket } of clients) socket.destroy() })
  await until('every client\'s first stats sample', () => clients.every(({ text }) => text().includes('event: stats\ndata: {')), 20_000)
  const first = clients[0]?.text() ?? ''
  t.match(first, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(first, /content-type: text\/event-stream/i)

  const refused = await fetch(`http://127.0.0.1:${cluster.monitoringPort}/cluster/events`)
  t.equal(refused.status, 503, 'past 100 clients a new one is refused')
  t.match(((await refused.json()) as { message: string }).message, /100 event-stream clients/)
  t.equal(await metricValue(cluster, 'cluster_event_stream_clients'), 100)

  const victim = (await cluster.call('stats')).workers[1].pid
  process.kill(victim, 'SIGKILL')
  const exitFrame = new RegExp(`event: worker:exit\\ndata: \\{"id":"1","pid":${victim as number},"code":null,"signal":"SIGKILL","state":"crashed"`)
  await until('worker:exit on every stream', () => clients.every(({ text }) => exitFrame.test(text())), 20_000)
  await until('worker:restart and worker:ready on every stream', () => clients.every(({ text }) =>
    text().includes('event: worker:restart\ndata: {"id":"1","restarts":1') && /event: worker:ready\ndata: \{"id":"1"/.test(text())), 20_000)
  t.pass('all 100 clients received the exit, the restart and the new worker\'s ready')

  for (const { socket } of clients) socket.destroy()
  let open = -1
  for (let i = 0; i < 100 && open !== 0; i++) {
    open = await metricValue(cluster, 'cluster_event_stream_clients')
    if (open !== 0) await sleep(50)
  }
  t.equal(open, 0, 'closed clients are dropped')
})

/**
 * A python3 program holding `count` clients of /cluster/events that never read (Node cannot set a
 * socket's receive buffer): each has a 4 KiB receive buffer, as a slow phone would advertise, so
 * the primary's side fills within seconds rather than after the tens of MiB Linux lets a
 * loopback receive buffer grow to. It prints `connected`, then waits until killed.
 */
function stalledScript (port: number, count: number): string {
  return [
    'import socket, sys',
    'clients = []',
    `for _ in range(${count}):`,
    '    s = socket.socket()',
    '    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
    `    s.connect(("127.0.0.1", ${port}))`,
    '    s.sendall(b"GET /cluster/events HTTP/1.1\\r\\nhost: 127.0.0.1\\r\\n\\r\\n")',
    '    clients.append(s)',
    'print("connected", flush=True)',
    'sys.stdin.read()'
  ].join('\n')
}

t.test('/cluster/events: clients that never read are cut off; the primary\'s memory stays bounded over 60 s of samples', async (t) => {
  // A sample every 10 ms, of 8 workers (a few KiB each), to 20 clients that never read. The
  // kernel takes the first MiBs of each (its send buffer grows up to net.ipv4.tcp_wmem's maximum,
  // 4 MiB here), within seconds; past that, without the bound, the primary would hold hundreds of
  // MiB by the end of the minute.
  const cluster = await startCluster(t, { CLUSTER_WORKERS: '8' }, { monitoring: { sampleInterval: 10 } })
  const pid = cluster.child.pid as number
  const listener = await openStream(cluster.monitoringPort)
  t.teardown(() => listener.socket.destroy())
  await until('a first sample', () => listener.text().includes('event: stats'), 20_000)
  const before = rss(pid)
  const stalled = spawn('python3', ['-c', stalledScript(cluster.monitoringPort, 20)], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { stalled.kill('SIGKILL') })
  let connected = ''
  stalled.stdout.on('data', (chunk) => { connected += chunk })
  await until('the stalled clients to connect', () => connected.includes('connected'), 20_000)
  let peak = before
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    peak = Math.max(peak, rss(pid))
    await sleep(250)
  }
  const growth = peak - before
  // Sampling 8 workers every 10 ms grows the heap by some 15–20 MiB whoever listens (seen here);
  // the stalled clients would add hundreds of MiB without the bound, at most 20 × 64 KiB with it.
  t.ok(growth < 64 * 2 ** 20, `the primary's RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB at most (bound 64 MiB)`)
  t.equal(await metricValue(cluster, 'cluster_event_stream_slow_disconnects_total'), 20, 'every stalled client was cut off')
  const samples = listener.text().split('event: stats').length - 1
  t.ok(samples > 100, `a client that reads kept receiving samples (${samples})`)
  t.equal(await metricValue(cluster, 'cluster_event_stream_clients'), 1, 'only the reading client is left')
})

t.test('beyond loopback, every route but /cluster/health and the page shell needs the token', async (t) => {
  const cluster = await startCluster(t, {}, { monitoring: { host: '0.0.0.0', token: 'events-token' } })
  const base = `http://127.0.0.1:${cluster.monitoringPort}`
  t.equal((await fetch(`${base}/cluster/health`)).status, 200)
  const page = await fetch(`${base}/`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.notMatch(await page.text(), /"pid"|events-token/, 'the shell carries no data and no token')
  for (const path of ['/cluster/stats', '/cluster/events', '/metrics']) {
    t.equal((await fetch(`${base}${path}`)).status, 401, `${path} without the token`)
    t.equal((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer nope' } })).status, 403, `${path} with a wrong token`)
  }
  t.equal((await fetch(`${base}/cluster/stats`, { headers: { authorization: 'Bearer events-token' } })).status, 200)
  const stream = await openStream(cluster.monitoringPort, { headers: 'authorization: Bearer events-token\r\n' })
  t.teardown(() => stream.socket.destroy())
  await until('a sample with the token', () => stream.text().includes('event: stats'), 20_000)
  t.pass('the stream answers with the token')
})
