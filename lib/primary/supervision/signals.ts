import type { PrimaryLogger } from '../log.js'

export interface SignalHandlers {
  /** Drains every worker; resolves true when all exited cleanly. */
  stop: () => Promise<boolean>
  /** Whether a stop is already under way. */
  stopping: () => boolean
  /** SIGKILLs every worker at once. */
  kill: () => void
  reload: () => Promise<unknown>
}

/**
 * The primary's signals: SIGTERM or SIGINT drains the cluster and exits (0 when every worker
 * exited cleanly); a second one during the drain kills the workers and exits 1 at once; SIGHUP
 * starts a rolling reload. Returns the function that removes the handlers.
 */
export function handleSignals (handlers: SignalHandlers, log: PrimaryLogger): () => void {
  const onStop = (signal: NodeJS.Signals): void => {
    if (handlers.stopping()) {
      log.error(`second ${signal} during shutdown: killing workers`)
      handlers.kill()
      process.exit(1)
    }
    log.info({ signal }, 'cluster shutdown: draining workers')
    handlers.stop().then((clean) => process.exit(clean ? 0 : 1), () => process.exit(1))
  }
  const onReload = (): void => {
    handlers.reload().catch((error: Error) => log.warn(`SIGHUP ignored: ${error.message}`))
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  process.on('SIGHUP', onReload)
  return () => {
    process.removeListener('SIGTERM', onStop)
    process.removeListener('SIGINT', onStop)
    process.removeListener('SIGHUP', onReload)
  }
}
