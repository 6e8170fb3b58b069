import Fastify, { type FastifyInstance } from 'fastify'
import { expect, test } from 'tstyche'
import { bootCluster, isClusterHandle, type CanaryVerdict, type ClusterHandle, type ClusterHealth, type ClusterStats, type ReloadResult, type RolloutProgress } from 'fastify-cluster-kit'

test('bootCluster resolves to a handle in the primary or the app in a worker', async () => {
  const result = await bootCluster(() => Fastify(), { workers: 2, maxMemory: '512M' })
  expect(result).type.toBe<ClusterHandle | FastifyInstance>()
  expect(bootCluster(() => Fastify(), { workers: '2' })).type.toRaiseError()
  expect(bootCluster(() => ({ hello: 'world' }))).type.toRaiseError()
  expect<ClusterStats['workers'][number]['state']>().type.toBe<'starting' | 'ready' | 'draining' | 'stopped' | 'crashed' | 'given-up'>()
  expect<ClusterHealth['status']>().type.toBe<'ok' | 'degraded'>()
})

test('isClusterHandle narrows the result to the handle or the app', async () => {
  const result = await bootCluster(() => Fastify())
  if (isClusterHandle(result)) {
    expect(result).type.toBe<ClusterHandle>()
    expect(result.stats().lastReload).type.toBe<ClusterStats['lastReload']>()
  } else {
    expect(result).type.toBe<FastifyInstance>()
  }
})

test('the handle\'s events are typed', () => {
  const handle = {} as ClusterHandle
  handle.on('worker:restart', (event) => {
    expect(event).type.toBe<{ id: string, restarts: number, delay: number }>()
  })
  handle.on('worker:recycle', (event) => {
    expect(event.pid).type.toBe<number>()
    expect(event.recycles).type.toBe<number>()
    expect(event.reason).type.toBe<string>()
  })
  expect(handle.on('no-such-event', () => {})).type.toRaiseError()
  expect(handle.reload()).type.toBe<Promise<ReloadResult>>()
})

test('monitoring options', () => {
  expect(bootCluster(() => Fastify(), { monitoring: { port: 3003, host: '127.0.0.1', token: 'secret', scrapeTimeout: 500 } })).type.not.toRaiseError()
  expect(bootCluster(() => Fastify(), { monitoring: false })).type.not.toRaiseError()
  expect(bootCluster(() => Fastify(), { monitoring: { sampleInterval: 500 }, balancing: 'reuseport' })).type.not.toRaiseError()
  expect(bootCluster(() => Fastify(), { balancing: 'kernel' })).type.toRaiseError()
  expect(bootCluster(() => Fastify(), { monitoring: { port: '3003' } })).type.toRaiseError()
  expect(bootCluster(() => Fastify(), { monitoring: { tokn: 'x' } })).type.toRaiseError()
  expect(bootCluster(() => Fastify(), { onPrimary: async () => {} })).type.not.toRaiseError()
  expect(bootCluster(() => Fastify(), { onPrimary: 'setup' })).type.toRaiseError()
})

test('canary rollouts: typed options, the verdict on a reload\'s result, the phases as events', () => {
  expect(bootCluster(() => Fastify(), { canary: { enabled: true, workers: 1, bake: 30_000, minRequests: 100, ratio: 2, latencyFloor: 50 } })).type.not.toRaiseError()
  expect(bootCluster(() => Fastify(), { canary: { bake: '30s' } })).type.toRaiseError()
  expect(bootCluster(() => Fastify(), { canary: { bakeTime: 30_000 } })).type.toRaiseError()
  expect<ReloadResult['canary']>().type.toBe<CanaryVerdict | undefined>()
  expect<CanaryVerdict['canary']['errorShare']>().type.toBe<number>()
  expect<ClusterStats['rollout']>().type.toBe<RolloutProgress | null>()
  const handle = {} as ClusterHandle
  handle.on('reload:phase', (progress) => {
    expect(progress.phase).type.toBe<'surge' | 'bake' | 'judge' | 'roll' | 'abort'>()
  })
})
