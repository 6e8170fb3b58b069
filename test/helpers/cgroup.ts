import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'

export interface PidsCgroup {
  /** A command prefix that runs its command inside the cgroup (see SpawnOptions.prefix). */
  prefix: string[]
  /** Tasks (processes and threads) in it now. */
  current: () => number
  /** Sets pids.max: a number, or 'max'. */
  limit: (max: number | 'max') => void
}

/**
 * A pids cgroup of its own (what a container's pids limit is), removed when the test ends.
 * Needs root, and the pids controller mounted (cgroup v1 at /sys/fs/cgroup/pids, or v2).
 */
export function pidsCgroup (t: Test): PidsCgroup {
  const v1 = '/sys/fs/cgroup/pids'
  const root = existsSync(join(v1, 'cgroup.procs')) ? v1 : '/sys/fs/cgroup'
  if (root !== v1) writeFileSync(join(root, 'cgroup.subtree_control'), '+pids')
  const dir = join(root, `fck-test-${process.pid}-${Date.now()}`)
  mkdirSync(dir)
  removeAtEnd(t, root, dir)
  return {
    prefix: enter(dir),
    current: () => Number(readFileSync(join(dir, 'pids.current'), 'utf8')),
    limit: (max) => writeFileSync(join(dir, 'pids.max'), String(max))
  }
}

/**
 * A memory cgroup of its own with `limit` bytes (what a container's memory limit is), removed
 * when the test ends: cgroup v1's memory controller where it is mounted, else v2. Needs root.
 */
export function memoryCgroup (t: Test, limit: number): { prefix: string[] } {
  const v1 = '/sys/fs/cgroup/memory'
  const root = existsSync(join(v1, 'cgroup.procs')) ? v1 : '/sys/fs/cgroup'
  if (root !== v1) writeFileSync(join(root, 'cgroup.subtree_control'), '+memory')
  const dir = join(root, `fck-test-${process.pid}-${Date.now()}`)
  mkdirSync(dir)
  writeFileSync(join(dir, root === v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(limit))
  if (root !== v1) writeFileSync(join(dir, 'memory.swap.max'), '0')
  removeAtEnd(t, root, dir)
  return { prefix: enter(dir) }
}

/** Removes the cgroup `dir` when the test ends. */
function removeAtEnd (t: Test, root: string, dir: string): void {
  t.teardown(async () => {
    // What still runs in it (the cluster is stopped by a later teardown) moves to the root first;
    // a process forked meanwhile makes rmdir fail, so try again.
    for (let attempt = 0; ; attempt++) {
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try { writeFileSync(join(root, 'cgroup.procs'), pid) } catch {}
      }
      try {
        rmdirSync(dir)
        return
      } catch (error) {
        if (attempt === 50) throw error
        await sleep(50)
      }
    }
  })
}

/** A command prefix that runs its command inside the cgroup `dir`. */
function enter (dir: string): string[] {
  return ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir]
}
