import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { SourceMap, type SourceMapPayload } from 'node:module'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Frame } from '../types.js'
import { setTimeout as sleep } from 'node:timers/promises'

/** Frames kept per stack: enough to see the caller of the caller, short enough for a log line. */
const MAX_FRAMES = 10

/**
 * What each worker gets in NODE_OPTIONS so that SIGUSR1 can open its inspector on loopback, on a
 * port the kernel picks (two workers cannot collide, nothing is reserved in advance). Until that
 * signal the flag costs nothing: no port, no thread. A primary started with its own `--inspect`
 * gives workers their inspector flags on the command line, which win over NODE_OPTIONS.
 */
export const INSPECTOR_OPTION = '--inspect-port=127.0.0.1:0'

/** Sockets listening on loopback, by inode (Linux: /proc/net/tcp and tcp6). */
function listeningInodes (): Map<string, number> {
  const found = new Map<string, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEXIP:HEXPORT; st 0A is LISTEN; the inode is field 9.
      if (fields[3] !== '0A' || fields[1] === undefined || fields[9] === undefined) continue
      found.set(fields[9], parseInt(fields[1].split(':')[1] ?? '0', 16))
    }
  }
  return found
}

/** Inodes of the sockets a process holds. */
function socketInodes (pid: number): Set<string> {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match?.[1] !== undefined) inodes.add(match[1])
    } catch {}
  }
  return inodes
}

/** Ports the process listens on now. */
function listeningPorts (pid: number): Set<number> {
  const listening = listeningInodes()
  const ports = new Set<number>()
  for (const inode of socketInodes(pid)) {
    const port = listening.get(inode)
    if (port !== undefined) ports.add(port)
  }
  return ports
}

interface CallFrame { functionName: string, url: string, location: { scriptId: string, lineNumber: number, columnNumber: number } }

interface InspectorMessage { method?: string, params?: { callFrames?: CallFrame[], scriptId?: string, url?: string } }

/**
 * Where the main thread of `pid` is now, even while its event loop is blocked: SIGUSR1 opens
 * the worker's inspector (see INSPECTOR_OPTION), the port it opened is read from /proc, and
 * `Debugger.pause` over the inspector protocol returns the paused stack (V8 interrupts running
 * JavaScript for it). Within `timeout` ms or it rejects; the caller kills the worker either way,
 * which closes the port.
 */
export async function captureStack (pid: number, timeout: number): Promise<Frame[]> {
  const deadline = AbortSignal.timeout(timeout)
  const before = listeningPorts(pid)
  process.kill(pid, 'SIGUSR1')
  let port: number | undefined
  while (port === undefined) {
    if (deadline.aborted) throw new Error(`its inspector did not open within ${timeout} ms`)
    port = [...listeningPorts(pid)].find((candidate) => !before.has(candidate))
    if (port === undefined) await sleep(10)
  }
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: deadline })).json() as Array<{ webSocketDebuggerUrl?: string }>
  const url = targets[0]?.webSocketDebuggerUrl
  if (url === undefined) throw new Error('its inspector listed no target')
  const frames = await pausedFrames(url, deadline)
  return await Promise.all(frames.slice(0, MAX_FRAMES).map(async (frame) => await sourceMapped({
    function: frame.functionName === '' ? '(anonymous)' : frame.functionName,
    file: frame.url,
    line: frame.location.lineNumber + 1,
    column: frame.location.columnNumber + 1
  })))
}

async function pausedFrames (url: string, deadline: AbortSignal): Promise<CallFrame[]> {
  const socket = new WebSocket(url)
  try {
    return await new Promise<CallFrame[]>((resolve, reject) => {
      deadline.addEventListener('abort', () => reject(new Error('the inspector did not pause it in time')), { once: true })
      socket.addEventListener('error', () => reject(new Error('the inspector connection failed')))
      socket.addEventListener('open', () => {
        socket.send(JSON.stringify({ id: 1, method: 'Debugger.enable' }))
        socket.send(JSON.stringify({ id: 2, method: 'Debugger.pause' }))
      })
      // Debugger.enable announces every script: a paused frame names its script only by id.
      const scripts = new Map<string, string>()
      socket.addEventListener('message', (event) => {
        const { method, params = {} } = JSON.parse(String(event.data)) as InspectorMessage
        if (method === 'Debugger.scriptParsed' && params.scriptId !== undefined) scripts.set(params.scriptId, params.url ?? '')
        if (method !== 'Debugger.paused') return
        resolve((params.callFrames ?? []).map((frame) => ({ ...frame, url: frame.url !== '' ? frame.url : scripts.get(frame.location.scriptId) ?? '' })))
      })
    })
  } finally {
    socket.close()
  }
}

const maps = new Map<string, Promise<SourceMap | undefined>>()

/** The source map a compiled file names (`//# sourceMappingURL=`, a file or a data: URL), if any. */
async function loadMap (path: string): Promise<SourceMap | undefined> {
  const code = await readFile(path, 'utf8')
  const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(code)?.[1]
  if (url === undefined) return undefined
  const text = url.startsWith('data:')
    ? Buffer.from(url.slice(url.indexOf(',') + 1), url.includes(';base64,') ? 'base64' : 'utf8').toString('utf8')
    : await readFile(resolve(dirname(path), decodeURIComponent(url)), 'utf8')
  const payload = JSON.parse(text) as SourceMapPayload
  return new SourceMap({ ...payload, sources: payload.sources.map((source) => resolve(dirname(path), payload.sourceRoot ?? '', source)) })
}

/** The frame in the source a source map names (TypeScript, a bundle), else as it is; paths relative to the working directory. */
async function sourceMapped (frame: Frame): Promise<Frame> {
  if (!frame.file.startsWith('file://')) return frame
  const path = fileURLToPath(frame.file)
  let map = maps.get(path)
  if (map === undefined) maps.set(path, map = loadMap(path).catch(() => undefined))
  const entry = (await map)?.findEntry(frame.line - 1, frame.column - 1)
  if (entry === undefined || !('originalSource' in entry)) return { ...frame, file: relative(process.cwd(), path) }
  return { ...frame, file: relative(process.cwd(), entry.originalSource), line: entry.originalLine + 1, column: entry.originalColumn + 1 }
}

/** Frames of an error's stack (V8's `    at fn (file:line:col)` lines), with Node's own internals left out. */
export function stackFrames (stack: string): Frame[] {
  const frames: Frame[] = []
  for (const line of stack.split('\n')) {
    const match = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/.exec(line)
    if (match === null) continue
    const [, fn, file = '', row = '0', column = '0'] = match
    if (file.startsWith('node:')) continue
    frames.push({
      function: fn ?? '(anonymous)',
      file: file.startsWith('file://') ? relative(process.cwd(), fileURLToPath(file)) : file.startsWith('/') ? relative(process.cwd(), file) : file,
      line: Number(row),
      column: Number(column)
    })
    if (frames.length === MAX_FRAMES) break
  }
  return frames
}

/** `hashPassword (lib/auth.js:12:5)`. */
export function frameText (frame: Frame): string {
  return `${frame.function} (${frame.file}:${frame.line}:${frame.column})`
}
