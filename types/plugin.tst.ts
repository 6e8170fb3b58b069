import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import { expect, test } from 'tstyche'
import clusterPlugin, {
  clusterPlugin as named,
  type ClusterDecorator,
  type ClusterPluginOptions,
  FCK_INVALID_OPTION,
  FCK_MISSING_PEER,
  FCK_FACTORY_LISTENED,
  FCK_REGISTERED_TWICE,
  type Manager,
  RedisSessionStore,
  type SessionStoreOptions,
  type WorkerSample
} from 'fastify-cluster-kit'

const app = Fastify()

test('default and named exports are the same plugin, registrable with options', () => {
  expect(named).type.toBe(clusterPlugin)
  expect(app.register(clusterPlugin, { gracefulTimeout: 5000, workerIdHeader: false })).type.not.toRaiseError()
})

test('fastify.cluster is typed by module augmentation', () => {
  expect(app.cluster).type.toBe<ClusterDecorator>()
  expect(app.cluster.workerId).type.toBe<string>()
  expect(app.cluster.pid).type.toBe<number>()
  expect(app.cluster.manager).type.toBe<Manager>()
  expect(app.cluster.manager).type.toBe<'bootCluster' | 'pm2' | 'none'>()
  expect(app.cluster.sharedState).type.toBe<'redis' | 'primary' | 'memory'>()
  expect(app.cluster.isDraining()).type.toBe<boolean>()
  expect(app.cluster.addCheck('db', async () => true, { timeout: 100 })).type.toBe<void>()
})

test('wrong option types do not compile', () => {
  expect(app.register(clusterPlugin, { gracefulTimeout: '30s' })).type.toRaiseError()
  expect(app.register(clusterPlugin, { workerIdHeader: true })).type.toRaiseError()
  expect(app.register(clusterPlugin, { handleSignals: 'yes' })).type.toRaiseError()
  expect(app.register(clusterPlugin, { notAnOption: 1 })).type.toRaiseError()
  expect<ClusterPluginOptions>().type.not.toHaveProperty('port')
})

test('addCheck wants a name and a function', () => {
  expect(app.cluster.addCheck('db')).type.toRaiseError()
  expect(app.cluster.addCheck(1, () => true)).type.toRaiseError()
})

test('a heartbeat sample has the documented shape', () => {
  expect<WorkerSample['eventLoop']>().type.toBe<{ p50: number, p99: number, max: number, utilization: number }>()
  expect<WorkerSample['requests']>().type.toBe<{ total: number, inFlight: number, latencyP99: number, errors: number }>()
})

test('metrics: a prom-client registry on the decorator, typed options, a route can opt out', () => {
  expect(app.cluster.metrics).type.toBe<Registry | undefined>()
  expect(app.register(clusterPlugin, { metrics: { registry: new Registry(), buckets: [0.1, 1], endpoint: '/metrics', workerLabel: true } })).type.not.toRaiseError()
  expect(app.register(clusterPlugin, { metrics: false })).type.not.toRaiseError()
  expect(app.register(clusterPlugin, { metrics: true })).type.toRaiseError()
  expect(app.register(clusterPlugin, { metrics: { buckets: '0.1,1' } })).type.toRaiseError()
  expect(app.get('/private', { config: { metrics: false } }, async () => 'ok')).type.not.toRaiseError()
})

test('shared state: redis, rateLimit and session options, the stores', () => {
  expect(app.register(clusterPlugin, {
    redis: 'redis://127.0.0.1:6379',
    rateLimit: { max: 100, timeWindow: '1 minute' },
    session: { secret: 'a-session-secret-of-at-least-32-characters' },
    onStoreError: 'fail-closed',
    storeTimeout: 300
  })).type.not.toRaiseError()
  expect(app.register(clusterPlugin, { redis: { host: 'cache', port: 6379 }, sharedState: 'memory' })).type.not.toRaiseError()
  expect(app.register(clusterPlugin, { onStoreError: 'open' })).type.toRaiseError()
  expect(app.register(clusterPlugin, { sharedState: 'disk' })).type.toRaiseError()
  expect(app.register(clusterPlugin, { rateLimit: { max: 'ten' } })).type.toRaiseError()
  expect<ConstructorParameters<typeof RedisSessionStore>[1]>().type.toBe<SessionStoreOptions | undefined>()
  expect(new RedisSessionStore(new Redis()).get).type.toBeCallableWith('id', () => {})
})

test('error classes are exported, with their codes', () => {
  expect(new FCK_INVALID_OPTION('workers', '0', 'a whole number').code).type.toBe<'FCK_INVALID_OPTION'>()
  expect(new FCK_MISSING_PEER('The ioredis package', 'is', 'REDIS_URL', 'ioredis')).type.toBeAssignableTo<Error>()
  expect(new FCK_FACTORY_LISTENED().code).type.toBe<'FCK_FACTORY_LISTENED'>()
  expect(new FCK_REGISTERED_TWICE().code).type.toBe<'FCK_REGISTERED_TWICE'>()
  expect(new FCK_INVALID_OPTION('workers')).type.toRaiseError()
})

test('rate-limit options are the kit\'s own: a typo does not compile', () => {
  expect(app.register(clusterPlugin, { rateLimit: { max: 10, timewindow: '1 minute' } })).type.toRaiseError()
  expect(app.register(clusterPlugin, { rateLimit: { max: 10, exponentialBackoff: true, keyGenerator: (request) => request.ip } })).type.not.toRaiseError()
  expect(app.register(clusterPlugin, { session: { cookie: { secure: 'auto' } } })).type.toRaiseError()
})
