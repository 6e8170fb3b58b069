import type { Env } from './config.js'

/** Who started this process: our primary, PM2's cluster mode, or nobody. */
export type Manager = 'bootCluster' | 'pm2' | 'none'

export interface Identity {
  /** Slot id under bootCluster (`0..N-1`), `NODE_APP_INSTANCE` under PM2, else `single`. */
  workerId: string
  manager: Manager
}

/** The environment variables bootCluster sets on every worker it forks. */
export const WORKER_ENV = { id: 'WORKER_ID', flag: 'CLUSTER_WORKER' } as const

/**
 * What bootCluster adds to a worker's environment: its identity, and the primary's timeouts the
 * worker must agree with (its drain limit is the primary's kill timer; its heartbeat must beat
 * well within the primary's heartbeatTimeout).
 */
export function workerEnv (
  env: Env, slot: number, { gracefulTimeout, heartbeatTimeout }: { gracefulTimeout: number, heartbeatTimeout: number }, started = false
): Env {
  return {
    ...env,
    [WORKER_ENV.id]: String(slot),
    [WORKER_ENV.flag]: 'true',
    GRACEFUL_SHUTDOWN_TIMEOUT: String(gracefulTimeout),
    CLUSTER_HEARTBEAT_TIMEOUT: String(heartbeatTimeout),
    // A worker of a cluster that already ran starts even when Redis is away (see ResolvedSharedState).
    CLUSTER_STARTED: String(started)
  }
}

export function detectIdentity (env: Env): Identity {
  const slot = env[WORKER_ENV.id]
  if (env[WORKER_ENV.flag] === 'true' && slot !== undefined && slot !== '') {
    return { workerId: slot, manager: 'bootCluster' }
  }
  const pm2Instance = env.NODE_APP_INSTANCE ?? env.pm_id
  if (pm2Instance !== undefined && pm2Instance !== '') {
    return { workerId: pm2Instance, manager: 'pm2' }
  }
  return { workerId: 'single', manager: 'none' }
}
