package redisledger

import "github.com/redis/go-redis/v9"

// The scripts share one calling convention, so that every key they touch arrives in KEYS (a
// Redis Cluster requirement: a script may only touch the keys it was given, and they must
// share a slot):
//
//	KEYS[2i-1], KEYS[2i]  the counter HASH and its hold ZSET for item i (1-based)
//	KEYS[2n+1]            the reservation's settled marker (Reserve, Settle and Extend)
//	ARGV[#ARGV]           the clock: "0" for the server's (TIME), else unix ms (WithClock)
//
// Numbers travel as decimal strings. Lua 5.1 numbers are doubles, so Go bounds every amount
// and limit to MaxAmount (2^53-1), where doubles are exact; writes use HINCRBY with the
// caller's strings, so stored values are exact int64s. The check u+r+amount <= limit is exact
// too: all terms are non-negative and rounding is monotone, so a sum that really exceeds a
// limit of at most 2^53-1 can never round down to it.
//
// Time is the server's (TIME), so every replica agrees on when a hold expires whatever its
// own clock says. Redis 7 replicates a script's effects, not the script, so TIME before a
// write is allowed. Tests replace it with their own clock through the last ARGV (WithClock),
// so expiry can be tested without sleeping.

// expireLua is shared by the write scripts. expire(k, x, before, exp, floor) gives counter k
// the later of its expiry and exp (unix ms; 0 means never: lifetime counters), where before
// is PEXPIRETIME k read before this script wrote to it (-2: the key is new, -1: it never
// expires). exp is raised to floor first, so a stale Expires (clock skew) cannot delete the
// counter in the very write that touched it. The hold set x then gets exactly k's expiry: if
// x outlived k its ids would point nowhere (harmless), but if k outlived x, k's r would count
// holds that no one can expire any more. It returns k's expiry after the change.
const expireLua = `
local function expire(k, x, before, exp, floor)
  if exp == 0 then
    if before >= 0 then redis.call('PERSIST', k) end
  else
    if exp < floor then exp = floor end
    if before == -2 or (before >= 0 and before < exp) then redis.call('PEXPIREAT', k, exp) end
  end
  local kt = redis.call('PEXPIRETIME', k)
  if kt >= 0 then
    redis.call('PEXPIREAT', x, kt)
  elseif kt == -1 then
    redis.call('PERSIST', x)
  end
  return kt
end
local function nowms()
  local c = ARGV[#ARGV]
  if c ~= '0' then return tonumber(c) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// reserveLua reserves id. ARGV: id, hold (ms), then limit, amount, expires (unix ms, 0 =
// never) per item, then the clock. It returns -1 when the reservation was made, the 0-based index of the
// first item that does not fit, or -2 when id was already settled (nothing changed).
//
// Per counter, first occurrence only: drop the holds whose deadline has passed (subtract
// each from r, delete its field, trim the set), then read u, r and this id's own hold.
// Then every item is checked against its counter's running total (u + r + the amounts of
// earlier items of this call on the same counter), and only if all fit are holds written.
//
// A counter that already holds this id is not checked or held again: a repeated Reserve of
// a live id (a client-side retry after a lost reply) is a no-op that answers -1. Amounts of
// zero write nothing.
const reserveLua = expireLua + `
local n = (#KEYS - 1) / 2
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return -2 end
local now = nowms()
local id = ARGV[1]
local field = 'h:' .. id
local deadline = now + tonumber(ARGV[2])
local total, held, ttl = {}, {}, {}
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  if total[k] == nil then
    local stale = redis.call('ZRANGEBYSCORE', x, '-inf', now)
    if #stale > 0 then
      for _, s in ipairs(stale) do
        local h = redis.call('HGET', k, 'h:' .. s)
        if h then
          redis.call('HDEL', k, 'h:' .. s)
          if h ~= '0' then redis.call('HINCRBY', k, 'r', '-' .. h) end
        end
      end
      redis.call('ZREMRANGEBYSCORE', x, '-inf', now)
    end
    local v = redis.call('HMGET', k, 'u', 'r', field)
    total[k] = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    held[k] = v[3] ~= false
    ttl[k] = redis.call('PEXPIRETIME', k)
  end
  if not held[k] then
    total[k] = total[k] + tonumber(ARGV[3 * i + 1])
    if total[k] > tonumber(ARGV[3 * i]) then return i - 1 end
  end
end
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  local amount = ARGV[3 * i + 1]
  if not held[k] and amount ~= '0' then
    redis.call('HINCRBY', k, field, amount)
    redis.call('HINCRBY', k, 'r', amount)
    redis.call('ZADD', x, deadline, id)
  end
  ttl[k] = expire(k, x, ttl[k], tonumber(ARGV[3 * i + 2]), deadline)
end
return -1
`

// settleLua settles id. ARGV: id, settled-marker TTL (ms), then actual, expires (unix ms, 0
// = never) per item, then the clock. It returns 1 when applied and 0 when id was settled before (a no-op).
//
// Per item: release this id's hold if the counter still has it (subtract it from r, delete
// the field, ZREM the id), then add actual to u. The marker is written last; the only errors
// a script can meet midway (WRONGTYPE from a foreign key, int64 overflow) are configuration
// faults that a retry would meet again.
const settleLua = expireLua + `
local n = (#KEYS - 1) / 2
local marker = KEYS[#KEYS]
if redis.call('EXISTS', marker) == 1 then return 0 end
local floor = nowms() + 60000
local id = ARGV[1]
local field = 'h:' .. id
local ttl = {}
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  if ttl[k] == nil then ttl[k] = redis.call('PEXPIRETIME', k) end
  local h = redis.call('HGET', k, field)
  if h then
    redis.call('HDEL', k, field)
    if h ~= '0' then redis.call('HINCRBY', k, 'r', '-' .. h) end
  end
  redis.call('ZREM', x, id)
  local actual = ARGV[2 * i + 1]
  if actual ~= '0' then redis.call('HINCRBY', k, 'u', actual) end
  ttl[k] = expire(k, x, ttl[k], tonumber(ARGV[2 * i + 2]), floor)
end
redis.call('SET', marker, '1', 'PX', ARGV[2])
return 1
`

// extendLua extends id's hold. ARGV: id, hold (ms), then expires (unix ms, 0 = never) per
// item, then the clock. It returns 1 when some counter still held id and 0 when none did
// (never reserved, settled, or expired; nothing changed).
//
// Per counter, first occurrence only: a hold still in force (its deadline is in the future
// and the counter has its field) gets the later of its deadline and now + hold, and the
// counter (with its hold set) lives at least that long. A hold whose deadline has passed is
// left for the next Reserve to drop, never revived.
const extendLua = expireLua + `
local n = (#KEYS - 1) / 2
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return 0 end
local now = nowms()
local id = ARGV[1]
local field = 'h:' .. id
local deadline = now + tonumber(ARGV[2])
local seen, found = {}, 0
for i = 1, n do
  local k, x = KEYS[2 * i - 1], KEYS[2 * i]
  if not seen[k] then
    seen[k] = true
    local score = tonumber(redis.call('ZSCORE', x, id))
    if score and score > now and redis.call('HEXISTS', k, field) == 1 then
      found = 1
      if score < deadline then redis.call('ZADD', x, deadline, id) end
      expire(k, x, redis.call('PEXPIRETIME', k), tonumber(ARGV[2 + i]), deadline)
    end
  end
end
return found
`

// balanceLua reads one counter without writing (EVALSHA_RO): KEYS[1] the counter HASH,
// KEYS[2] its hold ZSET, ARGV[1] the clock. It returns {u, r} where r leaves out holds whose
// deadline has passed but that no write has dropped yet, so reports match what Reserve
// would see.
const balanceLua = `
local v = redis.call('HMGET', KEYS[1], 'u', 'r')
local u, r = v[1] or '0', v[2] or '0'
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #stale == 0 then return {u, r} end
local live = tonumber(r)
for _, s in ipairs(stale) do
  local h = redis.call('HGET', KEYS[1], 'h:' .. s)
  if h then live = live - tonumber(h) end
end
return {u, string.format('%d', live)}
`

var (
	reserveScript = redis.NewScript(reserveLua)
	settleScript  = redis.NewScript(settleLua)
	extendScript  = redis.NewScript(extendLua)
	balanceScript = redis.NewScript(balanceLua)
)
