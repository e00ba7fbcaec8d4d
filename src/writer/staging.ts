/**
 * Layout of a staged snapshot in shared memory: a u32 descriptor length, the descriptor
 * JSON, then each chunk (v8 structure, then segments) aligned to 8 bytes. The buffer is
 * reused across saves and grows by half again when a snapshot does not fit, because a copy
 * into an existing buffer runs at ~8 GB/s here and into a fresh one at ~1.5 GB/s.
 */
import type { EncodedState } from '../codec/serializer.js';
import type { SnapshotDescriptor } from './protocol.js';

const align8 = (n: number) => n + ((8 - (n % 8)) % 8);

/** Copies `encoded` and its descriptor into `buffer`, or into a bigger one it returns. */
export function stageSnapshot(
  buffer: SharedArrayBuffer | undefined,
  descriptor: Omit<SnapshotDescriptor, 'chunks'>,
  encoded: EncodedState,
): SharedArrayBuffer {
  const chunks = [encoded.structure, ...encoded.segments];
  const json = Buffer.from(
    JSON.stringify({ ...descriptor, chunks: chunks.map((c) => c.byteLength) }),
    'utf8',
  );
  let needed = align8(4 + json.byteLength);
  for (const chunk of chunks) needed += align8(chunk.byteLength);
  if (buffer === undefined || buffer.byteLength < needed) {
    buffer = new SharedArrayBuffer(
      buffer === undefined ? needed : Math.max(needed, Math.ceil(buffer.byteLength * 1.5)),
    );
  }
  const bytes = new Uint8Array(buffer);
  new DataView(buffer).setUint32(0, json.byteLength, true);
  bytes.set(json, 4);
  let offset = align8(4 + json.byteLength);
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += align8(chunk.byteLength);
  }
  return buffer;
}

/** Reads a staged snapshot back, as views on the shared buffer (no copy). */
export function readStaged(buffer: SharedArrayBuffer): {
  descriptor: SnapshotDescriptor;
  encoded: EncodedState;
} {
  const length = new DataView(buffer).getUint32(0, true);
  const descriptor = JSON.parse(
    Buffer.from(new Uint8Array(buffer, 4, length)).toString('utf8'),
  ) as SnapshotDescriptor;
  let offset = align8(4 + length);
  const views = descriptor.chunks.map((size) => {
    const view = new Uint8Array(buffer, offset, size);
    offset += align8(size);
    return view;
  });
  const [structure, ...segments] = views;
  return {
    descriptor,
    encoded: {
      structure: Buffer.from(structure!.buffer, structure!.byteOffset, structure!.byteLength),
      segments,
    },
  };
}

/** Below this the first copy costs under a millisecond: no buffer is prepared (#17.2). */
export const PREPARE_MIN_BYTES = 1024 ** 2;

/**
 * Size of a staging buffer prepared for a snapshot of about `rawBytes` encoded bytes: a
 * margin for the descriptor and a state that grows a little, so the first sync() fits.
 */
export function stagingBytesFor(rawBytes: number): number {
  return align8(Math.ceil(rawBytes * 1.05) + 64 * 1024);
}

/**
 * Bytes of typed arrays and ArrayBuffers reachable in the first levels of `state`: what
 * a snapshot of a fresh state will mostly hold, found without encoding it (#17.2). Bounded
 * (depth 3, 10,000 values), so it costs little on a state of many small objects.
 */
export function estimateStateBytes(state: unknown): number {
  let bytes = 0;
  let budget = 10_000;
  const seen = new Set<object>();
  const visit = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || budget-- <= 0 || seen.has(value)) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) bytes += value.byteLength;
    else if (value instanceof ArrayBuffer) bytes += value.byteLength;
    else if (depth < 3) {
      const items = value instanceof Map ? value.values() : Object.values(value);
      for (const item of items) visit(item, depth + 1);
    }
  };
  visit(state, 0);
  return bytes;
}

/**
 * Writes every page of `buffer` from byte `from` (a multiple of 4096) up to `to` once, in
 * the background thread, so they are resident before the main thread copies a snapshot
 * into it (#17.2). An atomic add of 0 keeps any byte the main thread may already have written.
 */
export function touchPages(buffer: SharedArrayBuffer, from = 0, to = buffer.byteLength): void {
  const words = new Int32Array(buffer, 0, Math.floor(buffer.byteLength / 4));
  const end = Math.min(words.length, Math.ceil(to / 4));
  for (let i = from / 4; i < end; i += 1024) Atomics.add(words, i, 0);
}

/** Bytes of a staging buffer touched per step: a few milliseconds of page faults. */
export const TOUCH_STEP = 1024 ** 2;

/**
 * One step of faulting in `buffer` from byte `from` (#17.1): touches the next TOUCH_STEP
 * bytes and returns where the step after starts (`buffer.byteLength` once done), or,
 * while a save runs on the main thread (`saving[0]` above 0), touches nothing and returns
 * `from`: faulting in 100 MB (0.1-1 s on these VMs) competed for the CPU and the memory
 * with a save() made right after restore().
 */
export function prefaultStep(buffer: SharedArrayBuffer, saving: Int32Array, from: number): number {
  if (from >= buffer.byteLength || Atomics.load(saving, 0) > 0) return from;
  const to = Math.min(buffer.byteLength, from + TOUCH_STEP);
  touchPages(buffer, from, to);
  return to;
}
