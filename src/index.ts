export { Checkpoint, type CheckpointInfo, type Trackable } from './checkpoint.js';
export { registerClass } from './codec/classes.js';
export type { Compression } from './codec/compression.js';
export { type CollectShardsOptions, collectShards } from './collect.js';
export {
  CheckpointClosedError,
  CheckpointError,
  CheckpointLockedError,
  CorruptCheckpointError,
  MissingShardsError,
  SerializationError,
  ShardEnvironmentError,
  StateTooDeepError,
  StoreError,
  UnsupportedFormatError,
  VersionMismatchError,
} from './errors.js';
export {
  type CheckpointListing,
  checkpointFile,
  checkpointFiles,
  listCheckpoints,
  readCheckpointFile,
  readCheckpointInfo,
} from './inspect.js';
export type { CheckpointOptions, LogTarget } from './options.js';
export { Random, type RandomState } from './random.js';
export type { Shard } from './shard.js';
export type { Durability, OnceOptions, StepStats } from './steps.js';
export { type BridgeOptions, bridgedStore } from './store/bridge.js';
export { type FileStoreOptions, type FileSystem, fileStore } from './store/file.js';
export { memoryStore } from './store/memory.js';
export type { AsyncCheckpointStore, LeaseOwner, RemoteGeneration } from './store/remote.js';
export type { CheckpointStore, Generation, LockOwner } from './store/store.js';
