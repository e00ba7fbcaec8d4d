/**
 * State serializer. New states are written in the portable format v2 (#13.1: our own
 * encoder, readable by every runtime; docs/format.md); states of format v1 (node:v8's
 * structured clone) are still decoded wherever node:v8 can.
 */
import type { Buffer } from 'node:buffer';
import { decodePortable } from './portable/decode.js';
import { encodePortable } from './portable/encode.js';
import { STATE_MAGIC } from './portable/tags.js';
import { decodeV8State } from './v8-state.js';

export { assignmentIsSafe } from './portable/decode.js';
export { formatPath, isStackOverflow } from './portable/encode.js';

/** One encoded state: the structure and the out-of-band segments it refers to. */
export interface EncodedState {
  /** The v2 structure (docs/format.md). */
  structure: Buffer;
  /**
   * Raw bytes of large array buffers, as views on the live memory (not copies): write or
   * copy them before the state changes.
   */
  segments: Uint8Array[];
}

/**
 * Encodes `envelope`, an object whose keys name the roots in error paths (`state`,
 * `tracked`…). Throws SerializationError naming the path of the first value that cannot
 * be stored; nothing is written in that case.
 */
export function encodeState(envelope: Record<string, unknown>, capacity?: number): EncodedState {
  return encodePortable(envelope, capacity);
}

/** Whether `structure` is a v2 state (else a v1 one, written by node:v8). */
export function isPortableState(structure: Uint8Array): boolean {
  return structure[0] === STATE_MAGIC[0] && structure[1] === STATE_MAGIC[1];
}

/**
 * Decodes what encodeState (or format v1's encoder) produced, telling the two apart by
 * their first byte; `segments` are fresh buffers owned by the result.
 */
export function decodeState(
  structure: Uint8Array,
  segments: readonly ArrayBuffer[],
  assignSafe?: boolean,
): Record<string, unknown> {
  if (isPortableState(structure))
    return decodePortable(structure, segments, assignSafe) as Record<string, unknown>;
  return decodeV8State(structure, segments);
}
