import { sendToPrimary } from '../common/protocol.js'

/**
 * Tells the primary what is ending this worker (an uncaught exception, or an unhandled rejection
 * that Node raises as one) before Node's own handling prints it and exits: the monitor changes
 * nothing of that handling, and an app's own `uncaughtException` handler still decides. Returns
 * the uninstaller.
 */
export function reportFatal (workerId: string): () => void {
  const monitor = (error: unknown, origin: string): void => {
    const { name, message, stack } = error instanceof Error ? error : { name: typeof error, message: String(error), stack: '' }
    // The IPC write of a small message completes at once, before Node exits.
    sendToPrimary({ type: 'fck:fatal', workerId, pid: process.pid, origin, error: { name, message, stack: stack ?? '' } }).catch(() => {})
  }
  process.on('uncaughtExceptionMonitor', monitor)
  return () => { process.off('uncaughtExceptionMonitor', monitor) }
}

/**
 * Has Node write a diagnostic report into `directory` when it dies of a fatal error (V8's heap
 * out-of-memory above all), for the primary to read the cause from; unless the app already asked
 * for such reports itself. Nothing is written, and nothing costs, until then.
 */
export function reportFatalErrors (directory: string | undefined): void {
  if (directory === undefined || directory === '' || process.report.reportOnFatalError) return
  process.report.directory = directory
  process.report.reportOnFatalError = true
}
