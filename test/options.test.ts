/**
 * Options declared once (#16.4): each value is checked by one validator, a TypeError when its
 * type is wrong and a RangeError when it is out of range, in one message style, wherever the
 * option is given (Checkpoint, once(), the S3 and Redis stores).
 */
import { describe, expect, test } from 'vitest';
import { Checkpoint, type CheckpointOptions, memoryStore } from '../dist/index.js';
import { redisStore } from '../dist/redis.js';
import { createRedisStore } from '../dist/store/redis.js';
import { createS3Store } from '../dist/store/s3.js';
import { thrownBy } from './helpers.js';

const make = (options: Record<string, unknown>) => () =>
  new Checkpoint({ log: false, signals: false, ...options } as CheckpointOptions);

describe('Checkpoint options', () => {
  test.each([
    // Before: RangeError 'an integer from 1 to 1000' for a string.
    [{ keep: '2' }, TypeError, "Expected `keep` to be an integer, got `'2'` (string)"],
    // Before: accepted as the default (`??`), while `clean: null` was a TypeError.
    [{ keep: null }, TypeError, 'Expected `keep` to be an integer, got `null` (null)'],
    [
      { compression: null },
      TypeError,
      "Expected `compression` to be 'brotli', 'gzip' or 'none', got `null` (null)",
    ],
    // Before: RangeError 'an integer from 0 to 1000' for a string.
    [{ retries: '3' }, TypeError, "Expected `retries` to be an integer, got `'3'` (string)"],
  ])('%o: a wrong type is a TypeError', (options, ErrorClass, message) => {
    const err = thrownBy(make(options));
    expect(err).toBeInstanceOf(ErrorClass);
    expect((err as Error).message).toBe(message);
  });

  test('once(): a wrong type of `retries` is a TypeError, as for the checkpoint', async () => {
    const chp = new Checkpoint({ name: 'opts', store: memoryStore(), log: false, signals: false });
    chp.restore({});
    await expect(chp.once('k', () => 1, { retries: '1' as unknown as number })).rejects.toThrow(
      new TypeError("Expected `options.retries` to be an integer, got `'1'` (string)"),
    );
    chp.close();
  });
});

describe('Redis store options', () => {
  // Before: unknown options were ignored, unlike Checkpoint's and the S3 store's.
  test('an unknown option is a TypeError naming it, at the call', () => {
    const message = 'Unknown option `urll`';
    expect(() => redisStore({ urll: 'redis://x' } as never)).toThrow(new TypeError(message));
    expect(() => createRedisStore({ urll: 'redis://x' } as never)).toThrow(new TypeError(message));
  });

  test('`cache` must be a string', () => {
    expect(() => redisStore({ cache: 5 as unknown as string })).toThrow(
      new TypeError('Expected `cache` to be a string, got `5` (number)'),
    );
  });

  test('the store is located from the settings validated once', () => {
    const store = redisStore({ url: 'redis://user:secret@cache:6380/2', prefix: 'p' });
    expect(store.locate('job')).toBe('redis://cache:6380/2/p:job');
  });
});

describe('`keep` given to a store', () => {
  // One validator for `keep`, the Checkpoint's, checked where a store is written to directly.
  test('S3: the Checkpoint\'s rule and message (before: "an integer >= 1", RangeError for any type)', async () => {
    const store = createS3Store({ bucket: 'b', endpoint: 'http://127.0.0.1:9' });
    await expect(store.write('x', [], 0)).rejects.toThrow(
      new RangeError('Expected `keep` to be an integer from 1 to 1000, got `0` (number)'),
    );
    await expect(store.write('x', [], '2' as unknown as number)).rejects.toThrow(
      new TypeError("Expected `keep` to be an integer, got `'2'` (string)"),
    );
  });

  test('Redis: a wrong type says what type was expected (before: the range)', async () => {
    const store = createRedisStore({ url: 'redis://127.0.0.1:9' });
    await expect(store.write('x', [], '2' as unknown as number)).rejects.toThrow(
      new TypeError("Expected `keep` to be an integer, got `'2'` (string)"),
    );
  });
});
