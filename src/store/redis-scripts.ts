/**
 * Lua scripts of the Redis store. Each runs atomically on the server, so a check and the
 * change it guards (the lease still ours → switch the manifest) cannot be split by another
 * client. Every key a script touches is passed in KEYS.
 */

/**
 * Takes the lease if nobody holds it (absent or expired), or if its holder has the token
 * ARGV[3] (found dead by the caller, #14.3; '' for none), with a new fencing token.
 * KEYS: lease, fence. ARGV: owner record as JSON without the token, ttl ms, token to replace.
 * Returns `[token, record]` when taken, `[0, current record]` when held by someone.
 */
export const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, held = pcall(cjson.decode, current)
  if ARGV[3] == '' or not ok or type(held) ~= 'table' or held.token ~= tonumber(ARGV[3]) then
    return {0, current}
  end
end
local token = redis.call('INCR', KEYS[2])
local record = string.sub(ARGV[1], 1, -2) .. ',"token":' .. token .. '}'
redis.call('SET', KEYS[1], record, 'PX', ARGV[2])
return {token, record}
`;

/** Extends the lease if it is still ours. KEYS: lease. ARGV: our record, ttl ms. Returns 1 or 0. */
export const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Deletes the lease if it is still ours. KEYS: lease. ARGV: our record. Returns 1 or 0. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * The fence shared by the scripts that change a checkpoint (commit, remove, move aside,
 * clean up), prepended to them: `fenced(lease key, fence key, our record, our token)` is
 * nil when the change may go ahead, else the current lease record ('' when none).
 * Without a lease of ours (record '') there is nothing to check. With one, the change is
 * refused if another holder has the lease, or if the fence counter moved past our token:
 * a newer lease was handed out since ours (even to a holder that has let go, or died,
 * without committing; it may have cleaned up data we still count on).
 */
const FENCED = `
local function fenced(lease_key, fence_key, record, token)
  if record == '' then return nil end
  local lease = redis.call('GET', lease_key)
  if lease and lease ~= record then return lease end
  if tonumber(redis.call('GET', fence_key) or '0') ~= tonumber(token) then return lease or '' end
  return nil
end
`;

/**
 * Makes an uploaded generation the latest, fenced. KEYS: manifest, lease, pending, fence.
 * ARGV: our lease record ('' when not leased), our token, the new entry as JSON, keep, ttl ms.
 * With a lease, the commit is refused (`['taken', current record or '']`) as `fenced`
 * says, or if a newer token has committed. If our lease merely expired and no newer one
 * was handed out, it is taken back. Generations beyond `keep` are moved from the manifest
 * to the pending hash (their data is deleted afterwards, or by a later cleanup if we die
 * first). Returns `['ok', dropped id…]`.
 */
export const COMMIT = `${FENCED}
local raw = redis.call('GET', KEYS[1])
local manifest = {token = 0, generations = {}}
if raw then manifest = cjson.decode(raw) end
local token = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  local taken = fenced(KEYS[2], KEYS[4], ARGV[1], token)
  if taken then return {'taken', taken} end
  if manifest.token > token then return {'taken', ''} end
  -- Our lease expired and no other was handed out since (the fence still reads our
  -- token): nobody can have written or cleaned up meanwhile, so take it back rather than
  -- fail a save that is still single-writer.
  if not redis.call('GET', KEYS[2]) then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[5]) end
end
if token > manifest.token then manifest.token = token end
local entry = cjson.decode(ARGV[3])
local kept, result = {entry}, {'ok'}
for _, g in ipairs(manifest.generations) do
  if #kept < tonumber(ARGV[4]) then
    table.insert(kept, g)
  else
    redis.call('HSET', KEYS[3], g.id, g.chunks)
    table.insert(result, g.id)
  end
end
manifest.generations = kept
redis.call('SET', KEYS[1], cjson.encode(manifest))
redis.call('HDEL', KEYS[3], entry.id)
return result
`;

/**
 * Drops the manifest, listing all its generations as pending deletion first, fenced.
 * KEYS: manifest, pending, lease, fence. ARGV: our lease record ('' when not leased), our
 * token. Returns `{'ok'}`, or `{'taken', current record or ''}` as `fenced` says.
 */
export const UNREFERENCE = `${FENCED}
local taken = fenced(KEYS[3], KEYS[4], ARGV[1], ARGV[2])
if taken then return {'taken', taken} end
local raw = redis.call('GET', KEYS[1])
if raw then
  for _, g in ipairs(cjson.decode(raw).generations) do redis.call('HSET', KEYS[2], g.id, g.chunks) end
  redis.call('DEL', KEYS[1])
end
return {'ok'}
`;

/**
 * Renames a manifest and its data keys, all or nothing, fenced. KEYS: manifest, new
 * manifest, lease, fence, then pairs of (data key, new data key). ARGV: the manifest as
 * read, our lease record ('' when not leased), our token. Returns `{'ok'}`,
 * `{'taken', current record or ''}` as `fenced` says, `{'changed'}` when the manifest
 * changed since it was read, `{'exists'}` when the new name is taken.
 */
export const MOVE = `${FENCED}
local taken = fenced(KEYS[3], KEYS[4], ARGV[2], ARGV[3])
if taken then return {'taken', taken} end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'changed'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
for i = 5, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 1]) end
end
redis.call('RENAME', KEYS[1], KEYS[2])
return {'ok'}
`;

/**
 * Deletes data of one generation and unlists it from pending, all or nothing, fenced when
 * a lease is given (a cleanup must not delete the upload of a newer holder). KEYS: pending,
 * lease, fence, then the chunk keys. ARGV: the generation id, our lease record ('' for no
 * check: data known to be ours), our token. Returns `{'ok'}` or `{'taken', record or ''}`.
 */
export const DISCARD = `${FENCED}
local taken = fenced(KEYS[2], KEYS[3], ARGV[2], ARGV[3])
if taken then return {'taken', taken} end
for i = 4, #KEYS do redis.call('UNLINK', KEYS[i]) end
redis.call('HDEL', KEYS[1], ARGV[1])
return {'ok'}
`;

/**
 * Appends a batch of step records to journal `epoch`, creating it (with the journal magic)
 * if needed, fenced. KEYS: journal, journal index (zset), lease, fence, last-written time.
 * ARGV: our lease record ('' when not leased), our token, the epoch, the magic, the bytes,
 * the time in ms. Returns `{'ok'}` or `{'taken', record or ''}`.
 */
export const JOURNAL_APPEND = `${FENCED}
local taken = fenced(KEYS[3], KEYS[4], ARGV[1], ARGV[2])
if taken then return {'taken', taken} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[3])
end
redis.call('APPEND', KEYS[1], ARGV[5])
redis.call('SET', KEYS[5], ARGV[6])
return {'ok'}
`;

/**
 * Deletes the journals numbered below ARGV[3], fenced. KEYS: journal index (zset), lease,
 * fence, last-written time (deleted with the last journal). ARGV: our lease record, our
 * token, the epoch, the journal key prefix.
 * Returns `{'ok'}` or `{'taken', record or ''}`.
 */
export const JOURNAL_DROP = `${FENCED}
local taken = fenced(KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if taken then return {'taken', taken} end
for _, epoch in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])) do
  redis.call('DEL', ARGV[4] .. epoch)
  redis.call('ZREM', KEYS[1], epoch)
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[4]) end
return {'ok'}
`;
