import type { Env } from './config.js'

// systemd socket activation (sd_listen_fds(3)): a socket unit holds the listening socket and
// passes it to the service at fd 3 (and on), so it outlives every process of the cluster: while
// the whole cluster restarts, connections wait in its backlog instead of being refused.

/** The first descriptor systemd passes. */
export const FIRST_FD = 3

/** What bootCluster sets on its workers: how many passed sockets the primary serves (they listen through it). */
export const WORKER_FDS = 'CLUSTER_LISTEN_FDS'

/** How many sockets systemd passed to this very process (LISTEN_PID is its pid), else 0. */
export function passedSockets (env: Env, pid = process.pid): number {
  if (env.LISTEN_PID !== String(pid)) return 0
  const count = Number(env.LISTEN_FDS)
  return Number.isSafeInteger(count) && count > 0 ? count : 0
}

/** The passed sockets a process serves: its own (a single process), or its primary's (a bootCluster worker). */
export function servedSockets (env: Env, underPrimary: boolean): number {
  if (!underPrimary) return passedSockets(env)
  const count = Number(env[WORKER_FDS] ?? 0)
  return Number.isSafeInteger(count) && count > 0 ? count : 0
}
