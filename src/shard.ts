/**
 * Array jobs (#15.1): which task of an array this process is, from the `shard` option or,
 * with `shard: 'auto'`, from the variables the engines set (Kubernetes Indexed Jobs, SLURM
 * job arrays, AWS Batch array jobs), and the name each shard's checkpoint takes.
 */
import { ShardEnvironmentError } from './errors.js';
import type { Shard } from './loops.js';
import { describe } from './options.js';

export type { Shard } from './loops.js';

/** Most shards of one array (SLURM's own default limit on array size is 1001). */
export const MAX_SHARDS = 1_000_000;

/** `<name>.shard-<index>-of-<count>`: the checkpoint name of one shard. */
export function shardName(name: string, { index, count }: Shard): string {
  return `${name}.shard-${index}-of-${count}`;
}

/** Validates an explicit `{ index, count }` (TypeError/RangeError naming the field). */
export function checkShard(value: unknown, option = 'shard'): Shard {
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(
      `Expected \`${option}\` to be { index, count } or 'auto', got ${describe(value)}`,
    );
  }
  for (const key of Object.keys(value)) {
    if (key !== 'index' && key !== 'count')
      throw new TypeError(`Unknown option \`${option}.${key}\``);
  }
  const { index, count } = value as { index?: unknown; count?: unknown };
  const count_ = integer(`${option}.count`, count, 1, MAX_SHARDS);
  const index_ = integer(`${option}.index`, index, 0, count_ - 1);
  return { index: index_, count: count_ };
}

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${option}\` to be an integer, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Expected \`${option}\` to be an integer from ${min} to ${max}, got ${describe(value)}`,
    );
  }
  return value;
}

/** Index variables, in the order they are read, with the engine that sets each. */
const INDEX_VARIABLES = [
  ['JOB_COMPLETION_INDEX', 'Kubernetes'],
  ['SLURM_ARRAY_TASK_ID', 'SLURM'],
  ['AWS_BATCH_JOB_ARRAY_INDEX', 'AWS Batch'],
] as const;

const READ =
  'read JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN), AWS_BATCH_JOB_ARRAY_INDEX, SLURM_ARRAY_TASK_COUNT and RESUME_SHARDS';

/**
 * The shard of this task from `env` (#15.1): the index from `JOB_COMPLETION_INDEX`,
 * `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` (0 when unset) or `AWS_BATCH_JOB_ARRAY_INDEX`,
 * the count from `SLURM_ARRAY_TASK_COUNT` or `RESUME_SHARDS`. Where several are set they must
 * agree. Anything missing, malformed or inconsistent throws ShardEnvironmentError naming the
 * variables read and their values.
 */
export function shardFromEnv(env: NodeJS.ProcessEnv = process.env): Shard {
  const fail = (why: string): never => {
    throw new ShardEnvironmentError(`shard: 'auto' ${why} (${READ})`);
  };
  const read = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    if (!/^\s*\d+\s*$/.test(raw)) fail(`found ${name}=${JSON.stringify(raw)}, not an integer >= 0`);
    return Number(raw);
  };
  const found: { index: number; from: string }[] = [];
  for (const [name] of INDEX_VARIABLES) {
    const value = read(name);
    if (value === undefined) continue;
    if (name === 'SLURM_ARRAY_TASK_ID') {
      const min = read('SLURM_ARRAY_TASK_MIN') ?? 0;
      if (value < min) fail(`found SLURM_ARRAY_TASK_ID=${value} below SLURM_ARRAY_TASK_MIN=${min}`);
      found.push({
        index: value - min,
        from: `SLURM_ARRAY_TASK_ID=${value} - SLURM_ARRAY_TASK_MIN=${min}`,
      });
    } else {
      found.push({ index: value, from: `${name}=${value}` });
    }
  }
  const first = found[0];
  if (first === undefined) {
    fail(
      'found no array index: none of JOB_COMPLETION_INDEX (Kubernetes), SLURM_ARRAY_TASK_ID (SLURM), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) is set',
    );
  }
  const other = found.find((f) => f.index !== first!.index);
  if (other !== undefined) {
    fail(
      `found two different indexes: ${first!.index} from ${first!.from}, ${other.index} from ${other.from}`,
    );
  }
  const slurmCount = read('SLURM_ARRAY_TASK_COUNT');
  const shards = read('RESUME_SHARDS');
  if (slurmCount !== undefined && shards !== undefined && slurmCount !== shards) {
    fail(
      `found two different counts: SLURM_ARRAY_TASK_COUNT=${slurmCount}, RESUME_SHARDS=${shards}`,
    );
  }
  const count = slurmCount ?? shards;
  if (count === undefined) {
    fail(
      `found index ${first!.index} (${first!.from}) but no shard count: set RESUME_SHARDS to the number of tasks of the array`,
    );
  }
  const countFrom = slurmCount !== undefined ? 'SLURM_ARRAY_TASK_COUNT' : 'RESUME_SHARDS';
  if (count! < 1 || count! > MAX_SHARDS) {
    fail(`found ${countFrom}=${count}, not a count from 1 to ${MAX_SHARDS}`);
  }
  if (first!.index >= count!) {
    fail(`found index ${first!.index} (${first!.from}) not below the count ${countFrom}=${count}`);
  }
  return { index: first!.index, count: count! };
}

/** The `shard` option resolved: undefined, an explicit `{ index, count }`, or `'auto'` read from `env`. */
export function resolveShard(value: unknown, env: NodeJS.ProcessEnv): Shard | undefined {
  if (value === undefined) return undefined;
  if (value === 'auto') return shardFromEnv(env);
  return checkShard(value);
}
