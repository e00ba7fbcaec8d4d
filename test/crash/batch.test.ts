/**
 * The batch example, killed: examples/batch.mjs starts the stand-in API, runs the batch job,
 * SIGKILLs it at random moments and restarts it until it finishes, then compares what the
 * API saw with what the job recorded. Every item must end recorded, and no item may have
 * been called after its answer was recorded (its recorded answer is the API's last one).
 * With durable 'step' a recorded answer is on disk before once() resolves; 'batched' may
 * lose the last 100 ms of answers to a kill, which are then asked again, never paid twice
 * once recorded. SOAK=1: 10,000 items and 30 kills each.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SOAK = process.env.SOAK === '1';
const RUNNER = fileURLToPath(new URL('../../examples/batch.mjs', import.meta.url));

interface Summary {
  items: number;
  recorded: number;
  calls: number;
  answers: number;
  answeredTwice: number;
  calledAfterRecorded: number;
}

function run(durable: string, items: number, kills: number) {
  const out = execFileSync(
    process.execPath,
    [RUNNER, '--json', '--durable', durable, '--items', String(items), '--kills', String(kills)],
    { encoding: 'utf8', timeout: 600_000 },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as Summary;
}

describe.each(['step', 'batched'])(
  "the batch example killed at random, durable: '%s'",
  (durable) => {
    it('ends with every item recorded, none called again after its answer was recorded', () => {
      const items = SOAK ? 10_000 : 3000;
      const summary = run(durable, items, SOAK ? 30 : 10);
      expect(summary.items).toBe(items);
      expect(summary.recorded).toBe(items);
      expect(summary.calledAfterRecorded).toBe(0);
      // Every item was answered at least once; kills add at most one repeat per call in flight.
      expect(summary.answers).toBeGreaterThanOrEqual(items);
      expect(summary.answers - items).toBeLessThanOrEqual(summary.answeredTwice * 32);
    }, 600_000);
  },
);
