/**
 * Lua scripts of the Redis store. Each runs atomically on the server, so a check and the
 * change it guards (the lease still ours → switch the manifest) cannot be split by another
 * client. Every key a script touches is passed in KEYS.
 */

/**
 * Takes the lease if nobody holds it (absent or expired), with a new fencing token.
 * KEYS: lease, fence. ARGV: owner record as JSON without the token, ttl ms.
 * Returns `[token, record]` when taken, `[0, current record]` when held by someone.
 */
export const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
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
 * Makes an uploaded generation the latest, fenced. KEYS: manifest, lease, pending.
 * ARGV: our lease record ('' when not leased), our token, the new entry as JSON, keep, ttl ms.
 * With a lease, the commit is refused (`['taken', current record or '']`) if another holder
 * has the lease or a newer token has committed. Generations beyond `keep` are
 * moved from the manifest to the pending hash (their data is deleted afterwards, or by a
 * later cleanup if we die first). Returns `['ok', dropped id…]`.
 */
export const COMMIT = `
local raw = redis.call('GET', KEYS[1])
local manifest = {token = 0, generations = {}}
if raw then manifest = cjson.decode(raw) end
local token = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  local lease = redis.call('GET', KEYS[2])
  if manifest.token > token or (lease and lease ~= ARGV[1]) then return {'taken', lease or ''} end
  -- Our lease expired and nobody committed since: no other writer can be fenced out by
  -- a newer token, so take it back rather than fail a save that is still single-writer.
  if not lease then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[5]) end
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
 * Drops the manifest, listing all its generations as pending deletion first.
 * KEYS: manifest, pending. Returns 1.
 */
export const UNREFERENCE = `
local raw = redis.call('GET', KEYS[1])
if raw then
  for _, g in ipairs(cjson.decode(raw).generations) do redis.call('HSET', KEYS[2], g.id, g.chunks) end
  redis.call('DEL', KEYS[1])
end
return 1
`;

/**
 * Renames a manifest and its data keys, all or nothing. KEYS: manifest, new manifest, then
 * pairs of (data key, new data key). ARGV: the manifest as read. Returns 1, or -1 when the
 * manifest changed since it was read, -2 when the new name is taken.
 */
export const MOVE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
for i = 3, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 1]) end
end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
`;

/**
 * Deletes data of one generation and unlists it from pending, all or nothing.
 * KEYS: pending, then the chunk keys. ARGV: the generation id. Returns 1.
 */
export const DISCARD = `
for i = 2, #KEYS do redis.call('UNLINK', KEYS[i]) end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;
