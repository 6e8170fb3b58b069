import os from 'node:os'
import { join } from 'node:path'
import { boolean, bytes, fraction, integer, ms, ratio, text, type Kind, type Setting } from '../common/config.js'
import { LIMITS } from './settings.js'

// The settings of the supervision policies a user turns on (`sick.*`, `canary.*`), declared like
// bootCluster's own in settings.ts and read by option-groups.ts.

/** A limit that is off unless set. */
const off = <T>(kind: Kind<T>): Kind<T | undefined> => kind

/**
 * The sick-worker policy (`sick.*`): off until one of the three limits is set. A ready worker
 * over a limit for `heartbeats` heartbeats in a row is replaced like a memory recycle (the new
 * one first), after a CPU profile of its last seconds is kept with the incident.
 */
export const SICK_SETTINGS = {
  loopDelay: {
    option: 'sick.loopDelay',
    env: 'CLUSTER_SICK_LOOP_DELAY',
    kind: off(ms(1)),
    default: undefined,
    shown: 'off',
    doc: 'a worker whose event-loop delay p99 stays above this many ms is sick'
  } satisfies Setting<number | undefined>,
  utilization: {
    option: 'sick.utilization',
    env: 'CLUSTER_SICK_UTILIZATION',
    kind: off(fraction),
    default: undefined,
    shown: 'off',
    doc: 'a worker whose event-loop utilisation stays above this share is sick'
  } satisfies Setting<number | undefined>,
  heapUsed: {
    option: 'sick.heapUsed',
    env: 'CLUSTER_SICK_HEAP',
    kind: bytes(2 ** 20),
    default: undefined,
    shown: 'off',
    doc: 'a worker whose V8 heap in use stays above this is sick'
  } satisfies Setting<number | undefined>,
  heartbeats: {
    option: 'sick.heartbeats',
    env: 'CLUSTER_SICK_HEARTBEATS',
    kind: integer(1, 1000),
    default: 5,
    shown: '5',
    doc: 'heartbeats in a row over a limit before a worker is replaced'
  } satisfies Setting<number>,
  profileSeconds: {
    option: 'sick.profileSeconds',
    env: 'CLUSTER_SICK_PROFILE_SECONDS',
    kind: integer(0, 60),
    default: 2,
    shown: '2',
    doc: 'seconds of CPU profile taken of a sick worker before it is replaced (0: none)'
  } satisfies Setting<number>,
  profileDir: {
    option: 'sick.profileDir',
    env: 'CLUSTER_SICK_PROFILE_DIR',
    kind: text('a directory path'),
    default: join(os.tmpdir(), 'fastify-cluster-kit-profiles'),
    shown: '<tmpdir>/fastify-cluster-kit-profiles',
    doc: 'where those profiles are kept (the newest 10)'
  } satisfies Setting<string>
}

/**
 * Canary rollouts (`canary.*`): off unless `enabled`. A reload first starts `workers` workers of
 * the new release beside all the old ones, bakes them for `bake` ms with a share of the traffic,
 * and replaces the old workers only when the canaries did as well (see supervision/canary.ts).
 */
export const CANARY_SETTINGS = {
  enabled: {
    option: 'canary.enabled',
    env: 'CLUSTER_CANARY',
    kind: boolean,
    default: false,
    shown: 'false',
    doc: 'a reload first bakes the new release in extra workers beside the old ones, and replaces the old ones only if it does as well'
  } satisfies Setting<boolean>,
  workers: {
    option: 'canary.workers',
    env: 'CLUSTER_CANARY_WORKERS',
    kind: integer(1, LIMITS.maxWorkers),
    default: 1,
    shown: '1',
    doc: 'extra workers the new release runs as during the bake (at most `workers`, and together within the workers bound)'
  } satisfies Setting<number>,
  bake: {
    option: 'canary.bake',
    env: 'CLUSTER_CANARY_BAKE',
    kind: ms(1000),
    default: 30_000,
    shown: '30000',
    doc: 'how long the canaries serve beside the old workers before they are judged'
  } satisfies Setting<number>,
  minRequests: {
    option: 'canary.minRequests',
    env: 'CLUSTER_CANARY_MIN_REQUESTS',
    kind: integer(0),
    default: 100,
    shown: '100',
    doc: 'requests the canaries must serve to be judged; short of it the bake is extended once, then the reload is aborted'
  } satisfies Setting<number>,
  ratio: {
    option: 'canary.ratio',
    env: 'CLUSTER_CANARY_RATIO',
    kind: ratio,
    default: 2,
    shown: '2',
    doc: 'the canaries fail when their 5xx share, request p99 or event-loop p99 is more than this many times the old workers\' (and above its floor)'
  } satisfies Setting<number>,
  errorFloor: {
    option: 'canary.errorFloor',
    env: 'CLUSTER_CANARY_ERROR_FLOOR',
    kind: fraction,
    default: 0.01,
    shown: '0.01',
    doc: 'a canary 5xx share at or below this passes whatever the old workers\''
  } satisfies Setting<number>,
  latencyFloor: {
    option: 'canary.latencyFloor',
    env: 'CLUSTER_CANARY_LATENCY_FLOOR',
    kind: ms(0),
    default: 50,
    shown: '50',
    doc: 'a canary request p99 at or below this many ms passes whatever the old workers\''
  } satisfies Setting<number>,
  loopFloor: {
    option: 'canary.loopFloor',
    env: 'CLUSTER_CANARY_LOOP_FLOOR',
    kind: ms(0),
    default: 20,
    shown: '20',
    doc: 'a canary event-loop delay p99 at or below this many ms passes whatever the old workers\''
  } satisfies Setting<number>
}
