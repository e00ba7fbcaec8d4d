/**
 * Integrity of checkpoint files (layout in src/codec/container.ts): every single-byte change,
 * every truncation and random multi-byte damage is detected by unpackCheckpoint with a
 * CorruptCheckpointError naming the file, and no other error class escapes; restore() falls
 * back to the previous generation when the latest is damaged, and says so; a newer format
 * version is refused with UnsupportedFormatError.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../dist/codec/checksum.js';
import { FORMAT_VERSION, MAGIC, unpackCheckpoint } from '../dist/codec/container.js';
import {
  Checkpoint,
  CheckpointError,
  CorruptCheckpointError,
  UnsupportedFormatError,
} from '../dist/index.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** `text` as a regular expression source matching exactly it. */
const re = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rs-corrupt-'));
  made.push(dir);
  return dir;
}

type Small = { step: number; label: string; list: number[]; when: Date; map: Map<string, number> };
const small = (step: number): Small => ({
  step,
  label: `step ${step}`,
  list: [1, 2, step],
  when: new Date(step * 1000),
  map: new Map([['k', step]]),
});

/** Saves `states` in order in a fresh folder; returns the folder and the latest file. */
function savedCheckpoint(states: Small[], keep = 2): { dir: string; latest: string } {
  const dir = tempDir();
  const chp = new Checkpoint<Small>({ name: 'job', dir, keep, log: false, signals: false });
  chp.restore(small(0));
  for (const state of states) chp.save(state);
  chp.close();
  return { dir, latest: join(dir, 'job.ckpt') };
}

function restoreWithLog(dir: string): {
  state: () => Small;
  lines: string[];
  chp: Checkpoint<Small>;
} {
  const lines: string[] = [];
  const chp = new Checkpoint<Small>({
    name: 'job',
    dir,
    log: (line) => lines.push(line),
    signals: false,
  });
  return {
    lines,
    chp,
    state: () => {
      try {
        return chp.restore(small(0));
      } finally {
        chp.close();
      }
    },
  };
}

/** What unpackCheckpoint did with `bytes`: 'ok', or the error's class, code and message. */
function outcome(bytes: Uint8Array, where: string): string {
  try {
    unpackCheckpoint(bytes, where);
    return 'ok';
  } catch (err) {
    if (!(err instanceof CheckpointError)) return `escaped ${String(err)}`;
    return `${err.constructor.name} ${err.code} ${err.message}`;
  }
}

/** A copy of `bytes` with the head CRC (bytes 16-19) recomputed over bytes 0-15 and the header. */
function withHeadCrc(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const headerLength = out.readUInt32LE(12);
  const json = out.subarray(20, 20 + headerLength);
  out.writeUInt32LE(crc32(json, crc32(out.subarray(0, 16))), 16);
  return out;
}

/** A copy of `bytes` with the final CRC (before the end marker) recomputed. */
function withFileCrc(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32LE(crc32(out.subarray(0, out.byteLength - 8)), out.byteLength - 8);
  return out;
}

describe('unpackCheckpoint on a damaged small checkpoint file', () => {
  let file: Buffer;
  let where: string;
  let headerLength: number;

  beforeAll(() => {
    const { latest } = savedCheckpoint([small(3)]);
    where = latest;
    file = readFileSync(latest);
    headerLength = file.readUInt32LE(12);
  });

  const prefix = () =>
    `CorruptCheckpointError CHECKPOINT_CORRUPT Checkpoint file ${where} is corrupt: `;

  it('the intact file decodes to the saved state, and has the documented layout', () => {
    expect(file.byteLength).toBeLessThan(1024);
    expect(file.byteLength % 8).toBe(0);
    expect(file.subarray(0, 8).equals(MAGIC)).toBe(true);
    expect(file.readUInt16LE(8)).toBe(FORMAT_VERSION);
    expect(FORMAT_VERSION).toBe(2);
    expect(file.readUInt16LE(10)).toBe(0);
    expect(file.subarray(-4).toString('latin1')).toBe('RSND');
    const { meta, envelope } = unpackCheckpoint(file, where);
    expect(meta.name).toBe('job');
    expect(meta.saves).toBe(1);
    expect(envelope.state).toEqual(small(3));
  });

  it('every single-byte change at every position (all 255 other values) is detected, with the exact reason', () => {
    const length = file.byteLength;
    const headerEnd = 20 + headerLength;
    const hexes = /0x[0-9a-f]{8}/g;
    const problems: string[] = [];
    const seen = new Set<string>();
    for (let position = 0; position < length; position++) {
      const original = file[position]!;
      for (let value = 0; value < 256; value++) {
        if (value === original) continue;
        const damaged = Buffer.from(file);
        damaged[position] = value;
        let expected: string;
        if (position < 8) expected = 'not a checkpoint file (bad magic)';
        else if (position >= 12 && position < 16 && 20 + damaged.readUInt32LE(12) > length) {
          // A header length beyond the end of the file reads as a file cut short.
          expected = `truncated at ${length} bytes`;
        } else if (position < headerEnd) {
          expected = 'header checksum mismatch (stored 0x, computed 0x)';
        } else if (position < length - 4) expected = 'checksum mismatch (stored 0x, computed 0x)';
        else expected = 'bad end marker';
        const got = outcome(damaged, where).replace(hexes, '0x');
        seen.add(expected);
        if (got !== prefix() + expected) {
          problems.push(`byte ${position} ${original} -> ${value}: ${got}`);
          if (problems.length > 20) break;
        }
      }
    }
    expect(problems).toEqual([]);
    expect([...seen].sort()).toEqual([
      'bad end marker',
      'checksum mismatch (stored 0x, computed 0x)',
      'header checksum mismatch (stored 0x, computed 0x)',
      'not a checkpoint file (bad magic)',
      `truncated at ${length} bytes`,
    ]);
  });

  it('every truncation length is detected as a truncated file', () => {
    const length = file.byteLength;
    const problems: string[] = [];
    for (let cut = 0; cut < length; cut++) {
      const expected =
        cut < 20 + headerLength
          ? `truncated at ${cut} bytes`
          : `truncated: ${cut} bytes, expected ${length}`;
      // A fresh buffer, and a view into a larger one: offsets must not matter.
      const views = [
        Buffer.from(file.subarray(0, cut)),
        new Uint8Array(file.buffer, file.byteOffset, cut),
      ];
      for (const view of views) {
        const got = outcome(view, where);
        if (got !== prefix() + expected) problems.push(`cut at ${cut}: ${got}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('a file cut to 9-19 bytes is reported as truncated, not as a bad magic', () => {
    for (let cut = 9; cut < 20; cut++) {
      expect(outcome(file.subarray(0, cut), where)).toBe(`${prefix()}truncated at ${cut} bytes`);
    }
  });

  it('trailing bytes after the end marker are detected', () => {
    for (const extra of [1, 7, 8, 100]) {
      const longer = Buffer.concat([file, Buffer.alloc(extra, 0)]);
      expect(outcome(longer, where)).toBe(
        `${prefix()}longer than its header says: ${file.byteLength + extra} bytes, expected ${file.byteLength}`,
      );
    }
  });

  it('random multi-byte changes are detected (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(file.byteLength - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 2,
          maxLength: 40,
        }),
        (changes) => {
          const damaged = Buffer.from(file);
          for (const [position, value] of changes) damaged[position] = value;
          fc.pre(!damaged.equals(file));
          expect(outcome(damaged, where).startsWith(prefix())).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('random damage plus truncation or extension is detected (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(file.byteLength - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 8,
        }),
        fc.integer({ min: 0, max: file.byteLength + 64 }),
        fc.uint8Array({ maxLength: 64 }),
        (changes, length, tail) => {
          const damaged = Buffer.from(file);
          for (const [position, value] of changes) damaged[position] = value;
          const result = Buffer.concat([damaged.subarray(0, length), tail]);
          fc.pre(!result.equals(file));
          expect(outcome(result, where).startsWith(prefix())).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('arbitrary bytes, with or without the magic, raise only CorruptCheckpointError (fast-check)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 600 }), (magic, rest) => {
        const bytes = magic ? Buffer.concat([MAGIC, rest]) : rest;
        expect(outcome(bytes, where).startsWith(prefix())).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('garbage behind valid checksums (a broken writer) still raises only CorruptCheckpointError (fast-check)', () => {
    // The checksums pass, so this reaches the chunk table and the decoders.
    const body = file.subarray(20 + headerLength + ((8 - ((20 + headerLength) % 8)) % 8), -8);
    const header = JSON.parse(file.subarray(20, 20 + headerLength).toString('utf8')) as {
      meta: unknown;
      chunks: [number, number, number][];
    };
    const build = (json: string, payload: Uint8Array): Buffer => {
      const head = Buffer.alloc(20);
      MAGIC.copy(head, 0);
      head.writeUInt16LE(FORMAT_VERSION, 8);
      const text = Buffer.from(json, 'utf8');
      head.writeUInt32LE(text.byteLength, 12);
      const headPad = Buffer.alloc((8 - ((20 + text.byteLength) % 8)) % 8);
      const bodyPad = Buffer.alloc((8 - (payload.byteLength % 8)) % 8);
      const unsigned = Buffer.concat([head, text, headPad, payload, bodyPad]);
      const trailer = Buffer.concat([Buffer.alloc(4), Buffer.from('RSND', 'latin1')]);
      return withFileCrc(withHeadCrc(Buffer.concat([unsigned, trailer])));
    };
    // Sanity: rebuilding the real header and body gives a file that decodes.
    expect(unpackCheckpoint(build(JSON.stringify(header), body), where).envelope.state).toEqual(
      small(3),
    );
    const damagedBody = fc
      .array(fc.tuple(fc.nat(body.byteLength - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 6,
      })
      .map((changes) => {
        const out = Buffer.from(body);
        for (const [position, value] of changes) out[position] = value;
        return out;
      });
    const chunkTable = fc.oneof(
      fc.constant(header.chunks),
      // Codec ids 3 and up are a newer format (UnsupportedFormatError, #16.7: compression.test.ts).
      fc.array(fc.tuple(fc.integer({ min: -1, max: 2 }), fc.nat(2000), fc.nat(2000)), {
        maxLength: 3,
      }),
      fc.anything(),
    );
    const headerJson = fc.oneof(
      chunkTable.map((chunks) => JSON.stringify({ meta: header.meta, chunks })),
      fc.json(),
      fc.string(),
    );
    fc.assert(
      fc.property(
        headerJson,
        fc.oneof(damagedBody, fc.uint8Array({ maxLength: 400 })),
        (json, payload) => {
          const got = outcome(build(json, payload), where);
          // Damage may, rarely, still decode to something; anything else must be this class.
          if (got !== 'ok')
            expect(got.slice(0, prefix().length - 'is corrupt: '.length)).toBe(
              prefix().slice(0, -'is corrupt: '.length),
            );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a header that is JSON null behind a valid head CRC is reported as corrupt', () => {
    const json = Buffer.from('null');
    const head = Buffer.from(file.subarray(0, 20));
    head.writeUInt32LE(json.byteLength, 12);
    const bytes = withHeadCrc(Buffer.concat([head, json, Buffer.alloc(64)]));
    expect(outcome(bytes, where)).toBe(`${prefix()}header lacks meta or chunks`);
  });

  it('format version 3 with a correct head CRC: UnsupportedFormatError (CHECKPOINT_FORMAT)', () => {
    const newer = Buffer.from(file);
    newer.writeUInt16LE(3, 8);
    expect(outcome(newer, where)).toBe(
      `${prefix()}header checksum mismatch (stored 0x${file.readUInt32LE(16).toString(16).padStart(8, '0')}, computed 0x${crc32(
        newer.subarray(20, 20 + headerLength),
        crc32(newer.subarray(0, 16)),
      )
        .toString(16)
        .padStart(8, '0')})`,
    );
    const fixed = withHeadCrc(newer);
    expect(() => unpackCheckpoint(fixed, where)).toThrow(UnsupportedFormatError);
    expect(() => unpackCheckpoint(fixed, where)).toThrow(
      `Checkpoint file ${where} has format version 3; this version of resumable-state reads up to 2. Upgrade resumable-state to read it.`,
    );
    expect(outcome(fixed, where)).toMatch(/^UnsupportedFormatError CHECKPOINT_FORMAT /);
    // Also refused when the rest of the file is damaged: the version is the first thing said.
    const both = Buffer.from(fixed);
    both[both.byteLength - 12]! ^= 0xff;
    expect(outcome(both, where)).toMatch(/^UnsupportedFormatError CHECKPOINT_FORMAT /);
    expect(outcome(withHeadCrc(Buffer.from(file).fill(0xff, 8, 10)), where)).toBe(
      `UnsupportedFormatError CHECKPOINT_FORMAT Checkpoint file ${where} has format version 65535; this version of resumable-state reads up to 2. Upgrade resumable-state to read it.`,
    );
  });

  it('format version 0 with a correct head CRC is corrupt, not unsupported', () => {
    const zero = Buffer.from(file);
    zero.writeUInt16LE(0, 8);
    expect(outcome(withHeadCrc(zero), where)).toBe(`${prefix()}invalid format version 0`);
  });
});

describe('restore() with damaged generations (keep=2)', () => {
  const middle = (latest: string) => Math.floor(readFileSync(latest).byteLength / 2);

  it.each([
    [
      'one flipped payload byte',
      (bytes: Buffer) => {
        const out = Buffer.from(bytes);
        out[out.byteLength - 12]! ^= 0x01;
        return out;
      },
      /^checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)$/,
    ],
    [
      'a truncated file',
      (bytes: Buffer) => bytes.subarray(0, bytes.byteLength - 100),
      /^truncated: \d+ bytes, expected \d+$/,
    ],
    ['an empty file', () => Buffer.alloc(0), /^truncated at 0 bytes$/],
    [
      'zeros',
      (bytes: Buffer) => Buffer.alloc(bytes.byteLength),
      /^not a checkpoint file \(bad magic\)$/,
    ],
  ])(
    'latest is %s: restore() falls back to the previous generation and says so',
    (_label, damage, reason) => {
      const { dir, latest } = savedCheckpoint([small(1), small(2)]);
      const previous = readFileSync(`${latest}.1`);
      writeFileSync(latest, damage(readFileSync(latest)));
      const damaged = readFileSync(latest);
      const { state, lines, chp } = restoreWithLog(dir);
      expect(state()).toEqual(small(1));
      expect(chp.restored).toBe(true);
      expect(chp.info?.saves).toBe(1);
      expect(lines).toHaveLength(3);
      const notice = `resumable-state: Checkpoint file ${latest} is corrupt: `;
      expect(lines[0]!.startsWith(notice)).toBe(true);
      expect(lines[0]!.endsWith('; trying an older generation')).toBe(true);
      expect(lines[0]!.slice(notice.length, -'; trying an older generation'.length)).toMatch(
        reason,
      );
      expect(lines[1]).toBe(
        `resumable-state: fell back to an older generation of "job" (${latest}.1)`,
      );
      expect(lines[2]).toMatch(
        new RegExp(
          `^resumable-state: resumed "job" from save #1 of [\\d.]+s ago \\(${re(latest)}\\)$`,
        ),
      );
      // Restoring changed no file.
      expect(readFileSync(latest).equals(damaged)).toBe(true);
      expect(readFileSync(`${latest}.1`).equals(previous)).toBe(true);
    },
  );

  it('after a fallback, the next save is the latest again and restores', () => {
    const { dir, latest } = savedCheckpoint([small(1), small(2)]);
    const bytes = readFileSync(latest);
    bytes[middle(latest)]! ^= 0xff;
    writeFileSync(latest, bytes);
    const lines: string[] = [];
    const chp = new Checkpoint<Small>({
      name: 'job',
      dir,
      log: (l) => lines.push(l),
      signals: false,
    });
    const s = chp.restore(small(0));
    expect(s).toEqual(small(1));
    expect(lines[1]).toBe(
      `resumable-state: fell back to an older generation of "job" (${latest}.1)`,
    );
    s.step = 5;
    chp.save();
    expect(chp.info?.saves).toBe(2);
    chp.close();
    const again = restoreWithLog(dir);
    expect(again.state()).toEqual({ ...small(1), step: 5 });
    expect(again.lines).toEqual([
      expect.stringMatching(/^resumable-state: resumed "job" from save #2 of [\d.]+s ago \(/),
    ]);
  });

  it('both generations damaged: restore() throws CorruptCheckpointError naming the latest file', () => {
    const { dir, latest } = savedCheckpoint([small(1), small(2)]);
    for (const path of [latest, `${latest}.1`]) {
      const bytes = readFileSync(path);
      bytes[bytes.byteLength - 12]! ^= 0x10;
      writeFileSync(path, bytes);
    }
    const before = [readFileSync(latest), readFileSync(`${latest}.1`)];
    const { state, lines } = restoreWithLog(dir);
    let caught: unknown;
    try {
      state();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CorruptCheckpointError);
    const err = caught as CorruptCheckpointError;
    expect(err.code).toBe('CHECKPOINT_CORRUPT');
    expect(err.message).toMatch(
      new RegExp(
        `^Checkpoint file ${re(latest)} is corrupt: checksum mismatch \\(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\\); no valid older generation of "job" \\(2 checked\\)$`,
      ),
    );
    expect(err.cause).toBeInstanceOf(CorruptCheckpointError);
    expect((err.cause as Error).message).toMatch(
      new RegExp(`^Checkpoint file ${re(latest)} is corrupt: `),
    );
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^resumable-state: Checkpoint file ${re(latest)} is corrupt: .*; trying an older generation$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(
          `^resumable-state: Checkpoint file ${re(latest)}\\.1 is corrupt: .*; trying an older generation$`,
        ),
      ),
    ]);
    // Nothing was deleted or moved: the damaged files stay for inspection.
    expect(readFileSync(latest).equals(before[0]!)).toBe(true);
    expect(readFileSync(`${latest}.1`).equals(before[1]!)).toBe(true);
  });

  it('a latest file of a newer format version is refused by restore(), not skipped', () => {
    const { dir, latest } = savedCheckpoint([small(1), small(2)]);
    const newer = Buffer.from(readFileSync(latest));
    newer.writeUInt16LE(3, 8);
    writeFileSync(latest, withHeadCrc(newer));
    const { state, lines } = restoreWithLog(dir);
    expect(state).toThrow(UnsupportedFormatError);
    expect(lines).toEqual([]);
    let caught: unknown;
    try {
      restoreWithLog(dir).state();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsupportedFormatError);
    expect((caught as UnsupportedFormatError).code).toBe('CHECKPOINT_FORMAT');
    expect((caught as Error).message).toBe(
      `Checkpoint file ${latest} has format version 3; this version of resumable-state reads up to 2. Upgrade resumable-state to read it.`,
    );
    expect(readFileSync(latest).equals(withHeadCrc(newer))).toBe(true);
  });
});
