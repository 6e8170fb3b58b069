import os from 'node:os'
import t from 'tap'
import { resolveOptions } from '../../lib/worker/options.js'
import { resolveBootOptions } from '../../lib/primary/options.js'

const cores = os.availableParallelism()
const boot = (options: object, env: Record<string, string> = {}): unknown => resolveBootOptions(options, { NODE_ENV: 'development', ...env })
const worker = { CLUSTER_WORKER: 'true', WORKER_ID: '0', GRACEFUL_SHUTDOWN_TIMEOUT: '30000', CLUSTER_HEARTBEAT_TIMEOUT: '15000' }

t.test('worker count: 1 to 4 per core, 1024 with allowOversubscribe', async (t) => {
  t.match(boot({ workers: 4 * cores }), { workers: 4 * cores })
  t.throws(() => boot({ workers: 4 * cores + 1 }), { code: 'FCK_INVALID_OPTION', message: new RegExp(`<= ${4 * cores} \\(4 per core on ${cores} cores`) })
  t.throws(() => boot({}, { CLUSTER_WORKERS: '100000' }), { code: 'FCK_INVALID_ENV', message: /CLUSTER_WORKERS: got "100000"/ })
  t.match(boot({ workers: 1024, allowOversubscribe: true }), { workers: 1024 })
  t.throws(() => boot({}, { CLUSTER_WORKERS: '1025', CLUSTER_ALLOW_OVERSUBSCRIBE: 'true' }), { message: /expected a whole number of workers >= 1 and <= 1024$/ })
  t.throws(() => boot({ workers: 0 }), { message: /workers: got 0/ })
})

t.test('maxMemory: at least 64M; milliseconds: at most a day; maxRestarts: at most 1000', async (t) => {
  t.match(boot({ maxMemory: '64M' }), { maxMemory: 64 * 2 ** 20 })
  t.throws(() => boot({}, { MAX_WORKER_MEMORY: '40M' }), { message: /MAX_WORKER_MEMORY: got "40M", expected .* at least 64M/ })
  t.throws(() => boot({ maxMemory: 512 }), { message: /maxMemory: got 512/ })
  t.throws(() => boot({ gracefulTimeout: 86_400_001 }), { message: /gracefulTimeout: got 86400001, expected a whole number of milliseconds >= 1 and <= 86400000/ })
  t.throws(() => boot({ maxRestarts: 1001 }), { message: /maxRestarts: got 1001/ })
  t.match(boot({ givenUpRetryDelay: 0 }), { givenUpRetryDelay: 0 })
})

t.test('primaryStore: limits with defaults, unknown keys refused', async (t) => {
  t.match(boot({ primaryStore: { maxSessions: 10 } }), { primaryStore: { maxSessions: 10, maxSessionBytes: 64 * 2 ** 20, maxCounters: 100_000 } })
  t.throws(() => boot({ primaryStore: { maxSesions: 10 } }), { message: /primaryStore\.maxSesions: got an unknown option/ })
  t.throws(() => boot({ primaryStore: { maxSessions: 0 } }), { message: /primaryStore\.maxSessions: got 0/ })
})

t.test('plugin timings under bootCluster agree with the primary\'s', async (t) => {
  t.match(resolveOptions({}, worker), { gracefulTimeout: 30_000, heartbeatInterval: 1000 })
  t.throws(() => resolveOptions({ gracefulTimeout: 5000 }, worker), { message: /gracefulTimeout: got 5000, expected bootCluster's gracefulTimeout \(30000 ms\)/ })
  t.throws(() => resolveOptions({ heartbeatInterval: 7501 }, worker), { message: /heartbeatInterval: got 7501, expected .* <= 7500/ })
  t.match(resolveOptions({ heartbeatInterval: 20_000 }, {}), { heartbeatInterval: 20_000 }, 'no primary: no heartbeat bound')
  t.throws(() => resolveOptions({ shutdownDelay: 30_000 }, worker), { message: /shutdownDelay: got 30000, expected .* <= 29999/ })
})

t.test('shared-state options: official plugins\' keys only; where Redis came from', async (t) => {
  t.throws(() => resolveOptions({ rateLimit: { max: 1, timewindow: 1 } as object }, {}), { message: /rateLimit\.timewindow: got an unknown option/ })
  t.throws(() => resolveOptions({ session: { secret: 'x', cookiename: 'a' } as any }, {}), { message: /session\.cookiename: got an unknown option/ })
  t.match(resolveOptions({}, { REDIS_URL: 'redis://cache:6379' }).shared, { redis: 'redis://cache:6379', redisSource: 'REDIS_URL', startWithoutRedis: false })
  t.match(resolveOptions({}, { ...worker, REDIS_HOST: 'cache', CLUSTER_STARTED: 'true' }).shared,
    { redis: { host: 'cache', port: 6379 }, redisSource: 'REDIS_HOST and REDIS_PORT', startWithoutRedis: true })
})

t.test('monitoring settings are read only where the monitoring server can start', async (t) => {
  const unprotected = { CLUSTER_MONITORING_HOST: '0.0.0.0' }
  t.throws(() => boot({}, unprotected), { code: 'FCK_MONITORING_UNPROTECTED' }, 'a primary refuses them')
  t.match(resolveBootOptions({}, { NODE_ENV: 'development', ...unprotected }, false), { monitoring: false }, 'a worker or a PM2 instance ignores them')
  t.match(resolveBootOptions({}, { NODE_ENV: 'test', ...unprotected }), { enabled: false, monitoring: false }, 'so does one process')
})

t.test('the readers: code wins over the environment, an empty variable is unset, each kind names what it expects', async (t) => {
  t.match(boot({ port: 4000 }, { PORT: '5000' }), { port: 4000, warnings: ['PORT=5000 is ignored: the port option (4000) wins'] }, 'a good option wins, and says so')
  t.throws(() => boot({ port: 4000 }, { PORT: 'abc' }), { code: 'FCK_INVALID_ENV', message: /PORT: got "abc"/ }, 'a bad variable is refused even where an option overrides it')
  t.match(boot({}, { PORT: '' }), { port: 3000 }, 'an empty variable is the default')
  t.match(boot({}, { ENABLE_CLUSTERING: 'no', CLUSTER_ALLOW_OVERSUBSCRIBE: 'YES' }), { enabled: false })
  t.throws(() => boot({ enabled: 'yes' }), { message: /enabled: got "yes", expected true or false/ }, 'words are for variables only')
  t.match(boot({}, { MAX_WORKER_MEMORY: '1.5G' }), { maxMemory: 1.5 * 2 ** 30 })
  t.match(boot({}, { CLUSTER_MONITORING_PORT: 'FALSE' }), { monitoring: false })
  t.throws(() => boot({ monitoring: { port: false } as object }), { message: /monitoring\.port: got false/ }, 'false in code is `monitoring: false`')
  t.throws(() => boot({ monitoring: { tokn: 'x' } as object }), { message: /monitoring\.tokn: got an unknown option/ })
  t.throws(() => boot({}, { LOG_LEVEL: 'verbose' }), { code: 'FCK_INVALID_ENV', message: /LOG_LEVEL: got "verbose", expected trace, debug, info, warn, error or fatal/ })
  t.match(resolveBootOptions({}, { NODE_ENV: 'development', LOG_LEVEL: 'verbose' }, false), { logLevel: 'info' }, 'a worker does not read it')
  t.throws(() => resolveOptions({ metrics: { bucket: [1] } as object }, {}), { message: /metrics\.bucket: got an unknown option/ })
  t.match(resolveOptions({ healthPrefix: '/status/' }, {}), { healthPrefix: '/status' })
  t.match(resolveOptions({ redis: { host: 'cache' } }, { REDIS_URL: 'redis://other:6379' }).shared, { redis: { host: 'cache' }, redisSource: 'the redis option' }, 'ioredis options in code')
  t.throws(() => resolveOptions({}, { REDIS_URL: 'cache:6379' }), { message: /REDIS_URL: got "cache:6379", expected a redis:\/\/ or rediss:\/\/ URL$/ })
})

t.test('canary: off unless enabled; its settings from options or CLUSTER_CANARY_*, each checked', async (t) => {
  t.match(boot({}), { canary: undefined })
  t.match(boot({ canary: { bake: 10_000 } }), { canary: undefined }, 'settings alone do not turn it on')
  t.same((boot({ workers: 2 }, { CLUSTER_CANARY: 'true' }) as { canary: unknown }).canary,
    { enabled: true, workers: 1, bake: 30_000, minRequests: 100, ratio: 2, errorFloor: 0.01, latencyFloor: 50, loopFloor: 20 })
  t.match(boot({ workers: 2, canary: { enabled: true, workers: 2, minRequests: 0 } }, { CLUSTER_CANARY_RATIO: '1.5' }), { canary: { workers: 2, minRequests: 0, ratio: 1.5 } })
  t.throws(() => boot({ workers: 2, canary: { enabled: true, workers: 3 } }), { code: 'FCK_INVALID_OPTION', message: /canary\.workers: got 3, expected a whole number >= 1 and <= 2 \(canaries are extra to the 2 workers, at most as many, within the bound of \d+\)/ })
  const bound = 4 * cores
  t.match(boot({ workers: bound }), { canary: undefined }, 'off, a cluster at the bound needs no room')
  t.throws(() => boot({ workers: bound, canary: { enabled: true } }), { message: `Invalid option canary.enabled: got true, expected false while the ${bound} workers are at the bound of ${bound}: canaries are extra to them (run fewer workers, or allowOversubscribe)` })
  t.throws(() => boot({ workers: bound }, { CLUSTER_CANARY: 'yes' }), { code: 'FCK_INVALID_ENV', message: /CLUSTER_CANARY: got "yes", expected false while/ })
  t.match(boot({ workers: bound - 1, canary: { enabled: true, workers: 1 } }), { canary: { workers: 1 } }, 'the surge fills the bound, no more')
  t.throws(() => boot({ workers: bound - 1, canary: { enabled: true, workers: 2 } }), { message: /<= 1 \(canaries are extra/ })
  t.throws(() => boot({}, { CLUSTER_CANARY: 'true', CLUSTER_CANARY_BAKE: '30s' }), { code: 'FCK_INVALID_ENV', message: /CLUSTER_CANARY_BAKE: got "30s", expected a whole number of milliseconds >= 1000/ })
  t.throws(() => boot({ canary: { enabled: true, ratio: 0.5 } }), { message: /canary\.ratio: got 0\.5, expected a number from 1 to 1000/ })
  t.throws(() => boot({ canary: { enabled: true, errorFloor: 2 } }), { message: /canary\.errorFloor: got 2/ })
  t.throws(() => boot({ canary: { bakeTime: 1 } }), { message: /canary\.bakeTime: got an unknown option/ })
  t.throws(() => boot({ canary: true }), { message: /canary: got true, expected an object/ })
})
