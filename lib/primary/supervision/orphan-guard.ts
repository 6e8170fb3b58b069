import { spawn, type ChildProcess } from 'node:child_process'
import type { PrimaryLogger } from '../log.js'

/**
 * Kills the workers when the primary dies without stopping them (kill -9, the OOM killer).
 *
 * A worker whose primary is gone notices through its IPC channel and exits, but only if its event
 * loop runs: a blocked worker would go on as an orphan at 100% CPU. Node has no
 * PR_SET_PDEATHSIG, and a watchdog thread inside each worker would cost every worker a V8
 * isolate. So the primary keeps one `sh` beside it instead, and writes it the live worker pids
 * whenever they change. The pipe's only writer is the primary (libuv opens pipes close-on-exec,
 * so workers do not inherit it): when the primary dies the shell reads end-of-file and kills the
 * last pids it was given. A clean stop sends an empty list first. It ignores the signals a
 * terminal or a process manager sends the whole process group (Ctrl-C, a group SIGTERM): it must
 * outlive the primary's drain, and ends only when the primary's pipe closes.
 */
const SCRIPT = "trap '' INT TERM HUP; pids=; while IFS= read -r line; do pids=$line; done; [ -z \"$pids\" ] || kill -9 $pids 2>/dev/null; exit 0"

export class OrphanGuard {
  #child: ChildProcess | undefined
  #last = ''

  constructor (log: PrimaryLogger) {
    if (process.platform === 'win32') return
    const child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'] })
    child.on('error', (error) => {
      this.#child = undefined
      log.warn({ err: error }, `orphan guard not running (${error.message}): a worker whose event loop is blocked may outlive a primary killed with SIGKILL`)
    })
    child.stdin?.on('error', () => {})
    // Neither keeps the primary alive: it ends when the primary does, by design.
    child.unref()
    ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.()
    this.#child = child
  }

  get pid (): number | undefined {
    return this.#child?.pid
  }

  /** The pids to kill if the primary dies now. */
  update (pids: Array<number | undefined>): void {
    const line = pids.filter((pid) => pid !== undefined).join(' ')
    if (line === this.#last || this.#child?.stdin?.writable !== true) return
    this.#last = line
    this.#child.stdin.write(line + '\n')
  }

  /** Nothing to kill any more: the guard exits. */
  stop (): void {
    this.update([])
    this.#child?.stdin?.end()
    this.#child = undefined
  }
}
