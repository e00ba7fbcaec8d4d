/**
 * The step journal: results of `once()` appended as checksummed records, so finishing a
 * step costs one small append (shared by every step that finishes meanwhile: group
 * commit), never a rewrite of the whole state. A save folds the journal into the snapshot.
 *
 * A journal file is the 8-byte magic, then records: u32 length, u32 CRC-32 of the payload,
 * payload. A record cut short by a crash (a torn tail) fails its length or checksum and is
 * dropped with everything after it; records before it are intact.
 */
import { crc32 } from './codec/checksum.js';
import { assignmentIsSafe, decodeState, encodeState } from './codec/serializer.js';

export const JOURNAL_MAGIC = Buffer.from('RSJRNL1\n', 'latin1');
const RECORD_HEAD = 8;

/** Why a step failed, as recorded (the error itself cannot be stored faithfully). */
export interface StepError {
  name: string;
  message: string;
  code?: string;
}

/** The outcome of one step: its result, or the error of its last attempt. */
export type StepRecord =
  | { key: string; ok: true; value: unknown; attempts: number }
  | { key: string; ok: false; error: StepError; attempts: number };

/** One record, framed and checksummed, ready to append. */
export function encodeRecord(record: StepRecord): Buffer {
  // A small first buffer: one record per step, and the state's size hint is megabytes.
  const { structure, segments } = encodeState({ r: record }, 512);
  // payload: u32 count of out-of-band segments, u32 structure length, structure, then each
  // segment as u32 length + bytes.
  let payloadLength = 8 + structure.byteLength;
  for (const s of segments) payloadLength += 4 + s.byteLength;
  const out = Buffer.allocUnsafe(RECORD_HEAD + payloadLength);
  let at = RECORD_HEAD;
  at = out.writeUInt32LE(segments.length, at);
  at = out.writeUInt32LE(structure.byteLength, at);
  out.set(structure, at);
  at += structure.byteLength;
  for (const s of segments) {
    at = out.writeUInt32LE(s.byteLength, at);
    out.set(s, at);
    at += s.byteLength;
  }
  out.writeUInt32LE(payloadLength, 0);
  out.writeUInt32LE(crc32(out.subarray(RECORD_HEAD)), 4);
  return out;
}

/** What a journal file holds: its intact records, and where and why reading stopped early. */
export interface ParsedJournal {
  records: StepRecord[];
  /** Set when bytes after the last intact record were dropped: why. */
  dropped?: string;
}

/** Reads a journal's records, dropping a torn or corrupt tail (never throws on bad bytes). */
export function parseJournal(bytes: Uint8Array): ParsedJournal {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: StepRecord[] = [];
  if (buf.byteLength < JOURNAL_MAGIC.byteLength) {
    return { records, dropped: `a header of ${buf.byteLength} bytes` };
  }
  if (!buf.subarray(0, JOURNAL_MAGIC.byteLength).equals(JOURNAL_MAGIC)) {
    return { records, dropped: 'not a journal (bad magic)' };
  }
  let at = JOURNAL_MAGIC.byteLength;
  // Asked once: no code runs between the records' decodes that could add a setter.
  const assignSafe = assignmentIsSafe();
  while (at < buf.byteLength) {
    const problem = recordProblem(buf, at);
    if (problem !== undefined) {
      return { records, dropped: `${problem} at byte ${at}` };
    }
    const length = buf.readUInt32LE(at);
    try {
      const payload = buf.subarray(at + RECORD_HEAD, at + RECORD_HEAD + length);
      records.push(decodePayload(payload, assignSafe));
    } catch (err) {
      // Intact bytes that do not decode: written by something else; stop here as well.
      const why = `a record that does not decode (${(err as Error).message}) at byte ${at}`;
      return { records, dropped: why };
    }
    at += RECORD_HEAD + length;
  }
  return { records };
}

function recordProblem(buf: Buffer, at: number): string | undefined {
  if (buf.byteLength - at < RECORD_HEAD) return 'a torn record head';
  const length = buf.readUInt32LE(at);
  if (length < 8 || length > buf.byteLength - at - RECORD_HEAD) return 'a torn record';
  const payload = buf.subarray(at + RECORD_HEAD, at + RECORD_HEAD + length);
  if (crc32(payload) !== buf.readUInt32LE(at + 4)) return 'a record failing its checksum';
  return undefined;
}

function decodePayload(payload: Buffer, assignSafe: boolean): StepRecord {
  const count = payload.readUInt32LE(0);
  const structureLength = payload.readUInt32LE(4);
  let at = 8 + structureLength;
  const structure = payload.subarray(8, at);
  const segments: ArrayBuffer[] = [];
  for (let i = 0; i < count; i++) {
    const length = payload.readUInt32LE(at);
    at += 4;
    const segment = new ArrayBuffer(length);
    new Uint8Array(segment).set(payload.subarray(at, at + length));
    segments.push(segment);
    at += length;
  }
  if (at !== payload.byteLength) throw new Error('record length does not match its contents');
  const record = (decodeState(structure, segments, assignSafe) as { r?: StepRecord }).r;
  if (typeof record?.key !== 'string' || typeof record.ok !== 'boolean') {
    throw new Error('not a step record');
  }
  return record;
}
