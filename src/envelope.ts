/**
 * The envelope: what one checkpoint file stores besides its metadata (the user's state plus
 * everything needed to continue exactly), and its validated decode, shared by `restore()`
 * and the `resume` CLI.
 *
 * The checksum proves the bytes are the ones written, not that a trusted writer wrote them:
 * a crafted file with valid checksums could hold `null` or `5` (#11.11). So everything a
 * decoded envelope holds is checked against the shape this library writes, and anything
 * else is a CorruptCheckpointError like any other bad file.
 */
import {
  type ByteSource,
  bytesSource,
  type CheckpointMeta,
  readCheckpoint,
} from './codec/container.js';
import { CorruptCheckpointError } from './errors.js';
import type { StepRecord } from './journal.js';
import type { RandomState } from './random.js';

/** The stored envelope: the user's state plus everything needed to continue exactly. */
export interface Envelope {
  state: object;
  random: RandomState;
  tracked: Record<string, unknown>;
  /** Positions of `range`/`each` loops: key → items done (absent in files of older versions). */
  loops?: Map<string, number>;
  /** Outcomes of `once()` steps, folded in from the journal. */
  steps?: Map<string, StepRecord>;
  /** First journal not folded into `steps`: journals from this one on are replayed. */
  stepsFrom?: number;
}

/** A checkpoint file read whole: its metadata and its validated envelope. */
export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  envelope: Envelope;
}

/**
 * Reads one checkpoint from `source` (checksums verified before anything is decoded),
 * decodes it and validates its envelope. Throws CorruptCheckpointError naming `where`.
 */
export function readEnvelope(source: ByteSource | Uint8Array, where: string): LoadedCheckpoint {
  const bytes = source instanceof Uint8Array ? bytesSource(source) : source;
  const { meta, envelope } = readCheckpoint(bytes, where);
  return { meta, envelope: validateEnvelope(envelope, where) };
}

/** Returns `value` as an Envelope if it has the shape this library writes; else throws. */
export function validateEnvelope(value: unknown, where: string): Envelope {
  const problem = envelopeProblem(value);
  if (problem !== undefined) {
    throw new CorruptCheckpointError(
      `Checkpoint file ${where} is corrupt: its contents are not a saved state (${problem})`,
    );
  }
  return value as Envelope;
}

function envelopeProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return `the envelope is ${describe(value)}`;
  const { state, random, tracked, loops, steps, stepsFrom } = value;
  if (typeof state !== 'object' || state === null) return `\`state\` is ${describe(state)}`;
  // `random` is validated field by field when restore() applies it (Random.setState), which
  // reports a bad one as corrupt too; here only its presence is checked.
  if (random === undefined) return '`random` is undefined';
  if (!isPlainObject(tracked)) return `\`tracked\` is ${describe(tracked)}`;
  if (loops !== undefined) {
    if (!(loops instanceof Map)) return `\`loops\` is ${describe(loops)}`;
    for (const [key, count] of loops) {
      if (typeof key !== 'string' || !isCount(count)) {
        return `\`loops\` holds ${describe(key)} → ${describe(count)}`;
      }
    }
  }
  if (steps !== undefined) {
    if (!(steps instanceof Map)) return `\`steps\` is ${describe(steps)}`;
    for (const [key, record] of steps) {
      const problem = stepRecordProblem(record);
      if (problem !== undefined) return `step ${describe(key)}: ${problem}`;
      if ((record as StepRecord).key !== key) return `step ${describe(key)} holds another key`;
    }
  }
  if (stepsFrom !== undefined && !isCount(stepsFrom)) {
    return `\`stepsFrom\` is ${describe(stepsFrom)}`;
  }
  return undefined;
}

/** Why `record` is not a StepRecord as `once()` writes it, or undefined if it is one. */
export function stepRecordProblem(record: unknown): string | undefined {
  if (!isPlainObject(record)) return `the record is ${describe(record)}`;
  const { key, ok, attempts, error } = record;
  if (typeof key !== 'string') return `\`key\` is ${describe(key)}`;
  if (!isCount(attempts)) return `\`attempts\` is ${describe(attempts)}`;
  if (ok === true) return undefined;
  if (ok !== false) return `\`ok\` is ${describe(ok)}`;
  if (
    !isPlainObject(error) ||
    typeof error.name !== 'string' ||
    typeof error.message !== 'string' ||
    (error.code !== undefined && typeof error.code !== 'string')
  ) {
    return `\`error\` is ${describe(error)}`;
  }
  return undefined;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === Object.prototype || proto === null;
}

/** `null`, `5 (number)`, `a Map`: short and safe to print (never the value's contents). */
function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${String(value)} (${typeof value})`;
    case 'string':
      return value.length <= 40 ? JSON.stringify(value) : `a string of ${value.length} characters`;
    case 'object': {
      if (Array.isArray(value)) return 'an array';
      const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)
        ?.constructor?.name;
      return typeof name === 'string' && name !== '' && name !== 'Object'
        ? `a ${name}`
        : 'an object';
    }
    default:
      return `a ${typeof value}`;
  }
}
