export { clusterPlugin, clusterPlugin as default } from './worker/plugin.js'
export { bootCluster, isClusterHandle } from './boot.js'
export type { AppFactory } from './boot.js'
export type { ClusterDecorator } from './worker/plugin.js'
export type { SharedStateBackend, RedisConfig, RateLimitOptions, SessionOptions, SharedStateOptions } from './shared-state/options.js'
export { RedisSessionStore, type RedisLike, type SessionStoreOptions } from './shared-state/session-stores.js'
export type { ClusterPluginOptions, MetricsOptions } from './worker/options.js'
export type { BootClusterOptions, CanaryOptions, MonitoringOptions, SickOptions } from './primary/options.js'
export type { PrimaryStoreLimits } from './shared-state/primary-store.js'
export type { ClusterHandle, ClusterStats, WorkerStats, ClusterHealth, ClusterEvents, ReloadResult, LastReload, StoreStats, Incident, Frame, CanaryVerdict, BakeSide, RolloutPhase, RolloutProgress } from './primary/types.js'
export type { SlotState } from './primary/supervision/slot.js'
export type { Manager } from './common/identity.js'
export type { ReadinessCheck, CheckResult, HealthStatus } from './worker/health.js'
export type { WorkerSample } from './common/sample.js'
export {
  FCK_INVALID_OPTION, FCK_INVALID_ENV, FCK_DUPLICATE_CHECK, FCK_CHECK_TIMEOUT, FCK_CHECK_FAILED, FCK_INVALID_FACTORY, FCK_PORT_IN_USE,
  FCK_START_FAILED, FCK_RELOAD_IN_PROGRESS, FCK_SHUTTING_DOWN, FCK_MONITORING_UNPROTECTED, FCK_STORE_UNAVAILABLE, FCK_REDIS_UNAVAILABLE,
  FCK_MISSING_PEER, FCK_FACTORY_LISTENED, FCK_REGISTERED_TWICE
} from './common/errors.js'
