import type { ClusterHealth } from '../types.js'

/**
 * A drain is judged for health a moment later, not at once: a terminal's Ctrl-C reaches the
 * workers too, and their "draining" news can arrive before the primary's own signal handler has run.
 */
const HEALTH_SETTLE = 200

/**
 * Tells when the cluster turns unhealthy or healthy again, once per change. `read` gives the
 * cluster's health, or undefined while it starts or stops (no verdict then).
 */
export class HealthWatch {
  #healthy = true
  #timer: NodeJS.Timeout | undefined

  constructor (private readonly read: () => ClusterHealth | undefined, private readonly changed: (health: ClusterHealth) => void) {}

  check (): void {
    const health = this.read()
    if (health === undefined || health.healthy === this.#healthy) return
    this.#healthy = health.healthy
    this.changed(health)
  }

  /** Checks after HEALTH_SETTLE (see above); several calls meanwhile make one check. */
  checkSoon (): void {
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.check()
    }, HEALTH_SETTLE).unref()
  }

  stop (): void {
    clearTimeout(this.#timer)
  }
}
