import Fastify from 'fastify'
import t, { type Test } from 'tap'
import clusterPlugin, { type ClusterPluginOptions } from '../dist/index.js'

async function register (t: Test, options: unknown, env: NodeJS.ProcessEnv = {}): Promise<unknown> {
  const saved = { ...process.env }
  Object.assign(process.env, env)
  const app = Fastify()
  t.teardown(() => app.close())
  try {
    await app.register(clusterPlugin, options as ClusterPluginOptions)
    return undefined
  } catch (error) {
    return error
  } finally {
    process.env = saved
  }
}

const cases: Array<[string, unknown, NodeJS.ProcessEnv, RegExp, string]> = [
  ['negative gracefulTimeout', { gracefulTimeout: -1 }, {}, /Invalid option gracefulTimeout: got -1/, 'FCK_INVALID_OPTION'],
  ['fractional shutdownDelay', { shutdownDelay: 1.5 }, {}, /Invalid option shutdownDelay: got 1\.5/, 'FCK_INVALID_OPTION'],
  ['string heartbeatInterval', { heartbeatInterval: 'fast' }, {}, /heartbeatInterval: got "fast"/, 'FCK_INVALID_OPTION'],
  ['heartbeatInterval too small', { heartbeatInterval: 1 }, {}, /heartbeatInterval: got 1, expected a whole number of milliseconds >= 10/, 'FCK_INVALID_OPTION'],
  ['empty header name', { workerIdHeader: '' }, {}, /workerIdHeader: got ""/, 'FCK_INVALID_OPTION'],
  ['header name true', { workerPidHeader: true }, {}, /workerPidHeader: got true/, 'FCK_INVALID_OPTION'],
  ['relative health prefix', { healthPrefix: 'health' }, {}, /healthPrefix: got "health"/, 'FCK_INVALID_OPTION'],
  ['non-boolean handleSignals', { handleSignals: 'yes' }, {}, /handleSignals: got "yes"/, 'FCK_INVALID_OPTION'],
  ['unknown option', { gracefullTimeout: 10 }, {}, /Invalid option gracefullTimeout: got an unknown option/, 'FCK_INVALID_OPTION'],
  ['metrics true', { metrics: true }, {}, /Invalid option metrics: got true, expected an object or false/, 'FCK_INVALID_OPTION'],
  ['decreasing buckets', { metrics: { buckets: [1, 0.5] } }, {}, /Invalid option metrics\.buckets: got \[1,0\.5\], expected increasing positive numbers/, 'FCK_INVALID_OPTION'],
  ['relative metrics endpoint', { metrics: { endpoint: 'metrics' } }, {}, /metrics\.endpoint: got "metrics"/, 'FCK_INVALID_OPTION'],
  ['a registry that is not one', { metrics: { registry: {} } }, {}, /metrics\.registry: got \[object Object\], expected a prom-client Registry/, 'FCK_INVALID_OPTION'],
  ['an unparsable redis URL', { redis: 'localhost:6379' }, {}, /Invalid option redis: got "localhost:6379", expected a redis:\/\/ or rediss:\/\/ URL/, 'FCK_INVALID_OPTION'],
  ['an unparsable REDIS_URL', {}, { REDIS_URL: 'http://cache:6379' }, /Invalid environment variable REDIS_URL: got "http:\/\/cache:6379"/, 'FCK_INVALID_ENV'],
  ['a bad REDIS_PORT', {}, { REDIS_HOST: 'cache', REDIS_PORT: 'six' }, /Invalid environment variable REDIS_PORT: got "six"/, 'FCK_INVALID_ENV'],
  ['a session secret under 32 characters', { session: { secret: 'short' } }, {},
    /Invalid option session: got .*"secret":"<hidden>".*expected options @fastify\/session accepts \(the secret must have length 32 or greater\)/, 'FCK_INVALID_OPTION'],
  ['a rate-limit max that is not a number', { rateLimit: { max: 'ten' } }, {}, /Invalid option rateLimit\.max: got "ten", expected a whole number >= 0/, 'FCK_INVALID_OPTION'],
  ['an unreadable rate-limit window', { rateLimit: { timeWindow: 'soon' } }, {}, /Invalid option rateLimit\.timeWindow: got "soon"/, 'FCK_INVALID_OPTION'],
  ['a misspelled rate-limit key', { rateLimit: { max: 10, timewindow: '1 minute' } }, {},
    /Invalid option rateLimit\.timewindow: got an unknown option, expected one of global, max, timeWindow, /, 'FCK_INVALID_OPTION'],
  ['a rate-limit store of its own', { rateLimit: { store: class {} } }, {},
    /Invalid option rateLimit\.store: got an unknown option, expected none of store, redis, skipOnError: clusterPlugin provides the store/, 'FCK_INVALID_OPTION'],
  ['a misspelled session key', { session: { secret: 'a-session-secret-of-at-least-32-characters', saveUnitialized: true } }, {},
    /Invalid option session\.saveUnitialized: got an unknown option, expected one of secret, /, 'FCK_INVALID_OPTION'],
  ['onStoreError typo', { onStoreError: 'open' }, {}, /Invalid option onStoreError: got "open", expected 'fail-open' or 'fail-closed'/, 'FCK_INVALID_OPTION'],
  ['bad GRACEFUL_SHUTDOWN_TIMEOUT', {}, { GRACEFUL_SHUTDOWN_TIMEOUT: 'soon' }, /Invalid environment variable GRACEFUL_SHUTDOWN_TIMEOUT: got "soon"/, 'FCK_INVALID_ENV']
]

for (const [name, options, env, message, code] of cases) {
  t.test(name, async (t) => {
    t.match(await register(t, options, env), { code, message })
  })
}

t.test('an option wins over the environment, the environment over the default; a bad variable is refused all the same', async (t) => {
  t.match(await register(t, { gracefulTimeout: 500 }, { GRACEFUL_SHUTDOWN_TIMEOUT: 'soon' }),
    { code: 'FCK_INVALID_ENV', message: /Invalid environment variable GRACEFUL_SHUTDOWN_TIMEOUT: got "soon"/ },
    'a bad variable is reported even where an option overrides it')
  t.equal(await register(t, { gracefulTimeout: 500 }, { GRACEFUL_SHUTDOWN_TIMEOUT: '2500' }), undefined, 'a valid option wins over a valid variable')
  t.equal(await register(t, {}, { GRACEFUL_SHUTDOWN_TIMEOUT: '2500' }), undefined)
})
