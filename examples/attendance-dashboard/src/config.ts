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

function readTrustProxy (text: string | undefined): boolean | string {
  if (text === undefined || text === '' || text === 'false') return false
  return text === 'true' ? true : text
}

/** The example's own settings; the kit's (PORT, CLUSTER_WORKERS, CLUSTER_MONITORING_*, ...) are read by the kit. */
export const config = {
  /** Where the SQLite database lives (one file, shared by every worker through WAL). */
  dataDir: process.env.DATA_DIR ?? fileURLToPath(new URL('../data', import.meta.url)),
  /** Redis for sessions, rate limits and Socket.IO; without it the bootCluster primary carries them. */
  redisUrl: process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL,
  /** Check-ins one person may make per minute, across every worker; the same for check-outs. */
  checkInLimit: readCount('CHECKIN_RATE_LIMIT', 10, 1),
  /**
   * Sign-ins one client address may make per minute, across every worker (0: no limit). Each one
   * stores a session: without a limit, one client can fill the store. 20 covers a person who
   * mistypes and a small office behind one address; a script gets 429 after the 20th.
   */
  signInLimit: readCount('SIGNIN_RATE_LIMIT', 20, 0),
  /**
   * Fastify's `trustProxy` behind a balancer, so `request.ip` (the rate limits' and the session
   * store's client) is the real client: `true` (trust any), or the balancer's addresses/CIDRs (`127.0.0.1,10.0.0.0/8`).
   */
  trustProxy: readTrustProxy(process.env.TRUST_PROXY),
  /** At least 32 characters; set your own in production. */
  sessionSecret: process.env.SESSION_SECRET ?? 'attendance-dashboard-development-secret-change-me'
}

// The example once read SHUTDOWN_DELAY in seconds; the kit now reads GRACEFUL_SHUTDOWN_DELAY in
// milliseconds, like its other timings. An old setting must not be ignored without a word.
if (process.env.SHUTDOWN_DELAY !== undefined && process.env.SHUTDOWN_DELAY !== '') {
  process.stderr.write(`attendance-dashboard: SHUTDOWN_DELAY=${process.env.SHUTDOWN_DELAY} is no longer read: set GRACEFUL_SHUTDOWN_DELAY in milliseconds (e.g. 5000)\n`)
  process.exit(1)
}
