import createError from '@fastify/error'

// Every error the kit throws, in one table. Messages name what was wrong and the value seen,
// so a bad deployment fails with a line the operator can act on.

/** An option passed in code has a bad value: `(option, value, expected)`. */
export const FCK_INVALID_OPTION = createError<'FCK_INVALID_OPTION', [string, string, string]>(
  'FCK_INVALID_OPTION',
  'Invalid option %s: got %s, expected %s',
  500,
  TypeError
)

/** An environment variable has a bad value: `(variable, value, expected)`. */
export const FCK_INVALID_ENV = createError<'FCK_INVALID_ENV', [string, string, string]>(
  'FCK_INVALID_ENV',
  'Invalid environment variable %s: got %s, expected %s',
  500,
  TypeError
)

/** `fastify.cluster.addCheck()` was given a name that is already registered. */
export const FCK_DUPLICATE_CHECK = createError<'FCK_DUPLICATE_CHECK', [string]>(
  'FCK_DUPLICATE_CHECK',
  'A readiness check named %s is already registered'
)

/** A readiness check did not settle within its timeout. */
export const FCK_CHECK_TIMEOUT = createError<'FCK_CHECK_TIMEOUT', [string, number]>(
  'FCK_CHECK_TIMEOUT',
  'Readiness check %s timed out after %d ms',
  503
)

/** A readiness check resolved to `false`. */
export const FCK_CHECK_FAILED = createError<'FCK_CHECK_FAILED', [string]>(
  'FCK_CHECK_FAILED',
  'Readiness check %s reported not ready',
  503
)

/** `bootCluster`'s factory did not give back a Fastify instance: `(what it returned)`. */
export const FCK_INVALID_FACTORY = createError<'FCK_INVALID_FACTORY', [string]>(
  'FCK_INVALID_FACTORY',
  'bootCluster factory must return a Fastify instance (or a promise of one), got %s'
)

/** The factory called `listen()` itself: bootCluster listens (and, in a worker, tells the primary when). */
export const FCK_FACTORY_LISTENED = createError<'FCK_FACTORY_LISTENED', []>(
  'FCK_FACTORY_LISTENED',
  'The bootCluster factory called listen() itself: return the app without listening; bootCluster listens on the port option or PORT'
)

/** `fastify-cluster start` could not make an app of its entry: `(entry, why)`. */
export const FCK_ENTRY_FAILED = createError<'FCK_ENTRY_FAILED', [string, string]>(
  'FCK_ENTRY_FAILED',
  'Cannot run %s: %s'
)

/** clusterPlugin registered a second time on the same instance. */
export const FCK_REGISTERED_TWICE = createError<'FCK_REGISTERED_TWICE', []>(
  'FCK_REGISTERED_TWICE',
  'clusterPlugin is registered twice on this Fastify instance: register it once (bootCluster registers it only when the factory did not)'
)

/** The app's port is taken: `(host:port, where the port came from)`. */
export const FCK_PORT_IN_USE = createError<'FCK_PORT_IN_USE', [string, string]>(
  'FCK_PORT_IN_USE',
  'Cannot listen on %s: the address is already in use (port from %s)'
)

/** The cluster could not start: `(slot, reason)`. Nothing is left running. */
export const FCK_START_FAILED = createError<'FCK_START_FAILED', [string, string]>(
  'FCK_START_FAILED',
  'Cluster start failed: worker %s did not become ready: %s'
)

/** `reload()` while another reload runs. */
export const FCK_RELOAD_IN_PROGRESS = createError<'FCK_RELOAD_IN_PROGRESS', []>(
  'FCK_RELOAD_IN_PROGRESS',
  'A rolling reload is already running; wait for it to finish',
  409
)

/** `reload()` during shutdown. */
export const FCK_SHUTTING_DOWN = createError<'FCK_SHUTTING_DOWN', []>(
  'FCK_SHUTTING_DOWN',
  'The cluster is shutting down',
  503
)

/** The monitoring server would listen beyond loopback with no token: `(host, where it came from)`. */
export const FCK_MONITORING_UNPROTECTED = createError<'FCK_MONITORING_UNPROTECTED', [string, string]>(
  'FCK_MONITORING_UNPROTECTED',
  'Refusing to serve the monitoring API on %s (from %s) without a token: set CLUSTER_MONITORING_TOKEN (or monitoring.token), or bind 127.0.0.1'
)

/** A shared-state store (Redis, the primary) did not answer: `(store, reason)`. Answered with 503. */
export const FCK_STORE_UNAVAILABLE = createError<'FCK_STORE_UNAVAILABLE', [string, string]>(
  'FCK_STORE_UNAVAILABLE',
  'The %s store is unavailable: %s',
  503
)

/** Redis did not answer at a first start: `(address, where it came from, timeout, reason)`. */
export const FCK_REDIS_UNAVAILABLE = createError<'FCK_REDIS_UNAVAILABLE', [string, string, number, string]>(
  'FCK_REDIS_UNAVAILABLE',
  'Redis at %s (from %s) did not answer within storeTimeout (%d ms): %s',
  503
)

/**
 * Options need optional peer dependencies that are not installed, all named at once:
 * `(packages, "is" or "are", options, packages separated by spaces)`.
 */
export const FCK_MISSING_PEER = createError<'FCK_MISSING_PEER', [string, string, string, string]>(
  'FCK_MISSING_PEER',
  '%s %s needed for %s and not installed: npm install %s'
)

/** `error` as FCK_STORE_UNAVAILABLE for `store`, unless it already is one (a timeout of the primary's store). */
export function storeUnavailable (store: string, error: Error): Error {
  return (error as { code?: string }).code === 'FCK_STORE_UNAVAILABLE' ? error : new FCK_STORE_UNAVAILABLE(store, error.message)
}

/** A profile or heap snapshot of a worker the primary has no ready worker for: `(id)`. */
export const FCK_NO_READY_WORKER = createError<'FCK_NO_READY_WORKER', [string]>(
  'FCK_NO_READY_WORKER',
  'no ready worker %s',
  404
)

/** A profile or heap snapshot of a worker that is giving one already: `(id)`. */
export const FCK_DIAGNOSIS_RUNNING = createError<'FCK_DIAGNOSIS_RUNNING', [string]>(
  'FCK_DIAGNOSIS_RUNNING',
  'worker %s is already giving a profile or snapshot; one at a time',
  409
)

/** A heap snapshot that would not fit: `(id, needed MB, what it would exceed)`. */
export const FCK_SNAPSHOT_NO_ROOM = createError<'FCK_SNAPSHOT_NO_ROOM', [string, number, string]>(
  'FCK_SNAPSHOT_NO_ROOM',
  'a heap snapshot of worker %s needs about %d MB%s',
  507
)
