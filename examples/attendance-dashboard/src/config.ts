import { fileURLToPath } from 'node:url'

/** A whole number from the environment, or the process ends with one line naming the variable. */
function readCount (name: string, fallback: number, min: number): number {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < min) {
    process.stderr.write(`attendance-dashboard: Invalid environment variable ${name}: got ${JSON.stringify(text)}, expected a whole number >= ${min}\n`)
    process.exit(1)
  }
  return value
}

/** The example's own settings; the kit's (PORT, CLUSTER_WORKERS, CLUSTER_MONITORING_*, ...) are read by the kit. */
export const config = {
  /** Where the SQLite database lives (one file, shared by every worker through WAL). */
  dataDir: process.env.DATA_DIR ?? fileURLToPath(new URL('../data', import.meta.url)),
  /** Redis for sessions, rate limits and Socket.IO; without it the bootCluster primary carries them. */
  redisUrl: process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL,
  /** Check-ins one person may make per minute, across every worker; the same for check-outs. */
  checkInLimit: readCount('CHECKIN_RATE_LIMIT', 10, 1),
  /** At least 32 characters; set your own in production. */
  sessionSecret: process.env.SESSION_SECRET ?? 'attendance-dashboard-development-secret-change-me'
}

// The example once read SHUTDOWN_DELAY in seconds; the kit now reads GRACEFUL_SHUTDOWN_DELAY in
// milliseconds, like its other timings. An old setting must not be ignored without a word.
if (process.env.SHUTDOWN_DELAY !== undefined && process.env.SHUTDOWN_DELAY !== '') {
  process.stderr.write(`attendance-dashboard: SHUTDOWN_DELAY=${process.env.SHUTDOWN_DELAY} is no longer read: set GRACEFUL_SHUTDOWN_DELAY in milliseconds (e.g. 5000)\n`)
  process.exit(1)
}
