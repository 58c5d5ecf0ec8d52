"""Every Lua script of the store. The store's Redis protocol can be read in this file.

Scripts run atomically on the server: no other client observes a state between their
commands, which is what keeps a thread within ``max_messages`` at every instant and each
batch contiguous, with any number of concurrent writers.
"""

from __future__ import annotations

__all__ = [
    "APPEND_AND_TRIM",
    "APPEND_NEW_AND_TRIM",
    "BATCH_TOKENS_KEPT",
    "FINGERPRINTS_KEPT",
    "FINGERPRINT_WIDTH",
    "IMPORT_THREAD",
    "PRUNE_REGISTRY",
    "PURGE_THREAD",
    "REGISTRY_AFTER",
    "REPLACE_UNCHANGED",
]

# How many recent batch tokens a thread remembers. A retry arrives within seconds, long
# before this many other batches could have been written to the same thread.
BATCH_TOKENS_KEPT = 256

# The registry's part of both append scripts, run last in the same atomic step. Reads
# the locals meta_key, registry_key, labels, member, token_score, ttl_ms, messages_key and
# length. Keeps created/active (milliseconds), count, ttl and labels in the thread's meta
# hash (same hash slot) and, where KEYS allow it (standalone Redis), the prefix's registry.
# The expiry every key of the thread gets: this writer's TTL, which also slides the message
# list's; or, from a writer without a TTL, what is left of the list's own, so that no
# companion key (batches, fingerprints, meta) outlives the messages it describes.
_FOLLOW_TTL = """
local expire_ms = ttl_ms
if ttl_ms > 0 then
  redis.call('PEXPIRE', messages_key, ttl_ms)
else
  expire_ms = math.max(redis.call('PTTL', messages_key), 0)
end
"""

_REGISTER_THREAD = """
if meta_key then
  length = length or redis.call('LLEN', messages_key)
  -- The writer's clock in milliseconds: token_score (microseconds) less its last three
  -- digits, exact as a string whatever Lua's number formatting does.
  local now_ms = string.sub(token_score, 1, -4)
  redis.call('HSETNX', meta_key, 'created', now_ms)
  if labels ~= '' then
    redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', ttl_ms, 'labels', labels)
  else
    redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', ttl_ms)
  end
  -- The meta hash expires with the messages, also when this writer set no TTL itself.
  if expire_ms > 0 then
    redis.call('PEXPIRE', meta_key, expire_ms)
  end
  if registry_key then
    redis.call('ZADD', registry_key, now_ms, member)
  end
end
"""

# Append a batch, trim to the newest max_messages and refresh the TTL, in one round trip.
# A batch whose token was already applied is not applied again (a retried append whose
# reply was lost). The first seed_count payloads are written only if the thread does not
# exist yet (the store's `messages=` seed). Returns the thread's length, or -1 for a batch
# already applied. (One integer, not a pair: redis-py parses an array reply noticeably slower.)
#
# With the registry on, KEYS[3] is the thread's meta hash and two more ARGV precede the
# payloads: the labels JSON ('' keeps the stored labels) and the thread id. The meta hash
# is updated in the same atomic step (same hash slot). KEYS[4], the prefix-wide registry
# sorted set, is passed only where it may be (standalone Redis: any slot); on a Cluster
# the caller sends the same ZADD in the same pipeline instead.
APPEND_AND_TRIM = f"""
local messages_key = KEYS[1]
local batches_key = KEYS[2]
local meta_key = KEYS[3]
local registry_key = KEYS[4]
local max_messages = tonumber(ARGV[1])
local ttl_ms = tonumber(ARGV[2])
local token = ARGV[3]
local token_score = ARGV[4]
local seed_count = tonumber(ARGV[5])
local labels = ''
local member = ''
local first = 6
if meta_key then
  labels = ARGV[6]
  member = ARGV[7]
  first = 8
end

if token ~= '' and redis.call('ZSCORE', batches_key, token) then
  return -1
end
if seed_count > 0 and redis.call('EXISTS', messages_key) == 1 then
  first = first + seed_count
end

local length = nil
-- unpack() is bounded by the Lua stack, so push in chunks.
for i = first, #ARGV, 1000 do
  length = redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if max_messages > 0 then
  length = length or redis.call('LLEN', messages_key)
  if length > max_messages then
    redis.call('LTRIM', messages_key, -max_messages, -1)
    length = max_messages
  end
end

if token ~= '' then
  redis.call('ZADD', batches_key, token_score, token)
  redis.call('ZREMRANGEBYRANK', batches_key, 0, -{BATCH_TOKENS_KEPT + 1})
end
{_FOLLOW_TTL}
if expire_ms > 0 and token ~= '' then
  redis.call('PEXPIRE', batches_key, expire_ms)
end

{_REGISTER_THREAD}
return length or redis.call('LLEN', messages_key)
"""

# How many fingerprints of its newest messages a thread remembers for APPEND_NEW_AND_TRIM,
# the width of one (a kind letter and 16 hex digits, see fingerprints.py), and how many hex
# digits of the SHA1 of the newest entry mark the newest fingerprint.
FINGERPRINTS_KEPT = 256
FINGERPRINT_WIDTH = 17
_NEWEST_MARK_WIDTH = 16

# APPEND_AND_TRIM for the 1.x history provider, which is handed whole turns (and sometimes
# the whole transcript again) and must store each message once without reading the history.
# The caller sends one fingerprint per message. The thread's fingerprint list holds the
# fingerprints of its newest messages; the newest one also carries a mark of the newest
# entry of the message list, and the list is trusted only while that mark still matches
# (any other writer, e.g. APPEND_AND_TRIM, makes it stale and it restarts from this batch).
# The leading messages of the batch that repeat the newest stored ones are skipped, by the
# rule of the framework's filter_new_messages: first all known fingerprints as a run inside
# the batch, else the longest overlap of their end with the batch's start; a lone user
# message without an id never counts as a repeat. A normal turn reads only as many
# fingerprints as it brings, so the work is bounded by the batch, never by the history.
# Returns how many messages it appended. With the registry on, KEYS[4] (meta hash), KEYS[5] (registry,
# optional) and ARGV[6], ARGV[7] (labels, thread id) work as in APPEND_AND_TRIM; the
# fingerprints then start at ARGV[8].
APPEND_NEW_AND_TRIM = f"""
local messages_key = KEYS[1]
local batches_key = KEYS[2]
local fingerprints_key = KEYS[3]
local meta_key = KEYS[4]
local registry_key = KEYS[5]
local max_messages = tonumber(ARGV[1])
local ttl_ms = tonumber(ARGV[2])
local token = ARGV[3]
local token_score = ARGV[4]
local count = tonumber(ARGV[5])
local labels = ''
local member = ''
local first_fingerprint = 6
if meta_key then
  labels = ARGV[6]
  member = ARGV[7]
  first_fingerprint = 8
end
local first_payload = first_fingerprint + count
local width = {FINGERPRINT_WIDTH}

if token ~= '' and redis.call('ZSCORE', batches_key, token) then
  return 0
end

local function mark(payload)
  return string.sub(redis.sha1hex(payload), 1, {_NEWEST_MARK_WIDTH})
end

local known_count = 0
local newest_known = redis.call('LINDEX', fingerprints_key, -1)
if newest_known then
  local newest = redis.call('LINDEX', messages_key, -1)
  if newest and mark(newest) == string.sub(newest_known, width + 1) then
    known_count = redis.call('LLEN', fingerprints_key)
  else
    redis.call('DEL', fingerprints_key)
  end
end
-- A batch shorter than the known list can only overlap its newest `count` entries.
local read = math.min(known_count, count)
local known = {{}}
if read > 0 then
  for i, entry in ipairs(redis.call('LRANGE', fingerprints_key, -read, -1)) do
    known[i] = string.sub(entry, 1, width)
  end
end

local function incoming(i)
  return ARGV[first_fingerprint + i - 1]
end
-- Do incoming[1..last] end with the newest `span` known fingerprints?
local function ends_with_known(last, span)
  for k = 0, span - 1 do
    if incoming(last - k) ~= known[read - k] then
      return false
    end
  end
  return not (span == 1 and string.sub(known[read], 1, 1) == 'u')
end

local skip = 0
if known_count > 0 then
  if count >= known_count then
    for last = known_count, count do
      if ends_with_known(last, known_count) then
        skip = last
        break
      end
    end
  end
  if skip == 0 then
    for last = math.min(count, known_count - 1), 1, -1 do
      if ends_with_known(last, last) then
        skip = last
        break
      end
    end
  end
end

local length = redis.call('LLEN', messages_key)
local appended = count - skip
if appended > 0 then
  local first = first_payload + skip
  local final = first_payload + count - 1
  -- unpack() is bounded by the Lua stack, so push in chunks.
  for i = first, final, 1000 do
    length = redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, final)))
  end
  if max_messages > 0 and length > max_messages then
    redis.call('LTRIM', messages_key, -max_messages, -1)
    length = max_messages
  end
  local kept = {FINGERPRINTS_KEPT}
  if max_messages > 0 and max_messages < kept then
    kept = max_messages
  end
  local fresh = {{}}
  for i = math.max(skip + 1, count - kept + 1), count do
    fresh[#fresh + 1] = incoming(i)
  end
  fresh[#fresh] = fresh[#fresh] .. mark(ARGV[final])
  for i = 1, #fresh, 1000 do
    redis.call('RPUSH', fingerprints_key, unpack(fresh, i, math.min(i + 999, #fresh)))
  end
  redis.call('LTRIM', fingerprints_key, -kept, -1)
end

if token ~= '' then
  redis.call('ZADD', batches_key, token_score, token)
  redis.call('ZREMRANGEBYRANK', batches_key, 0, -{BATCH_TOKENS_KEPT + 1})
end
{_FOLLOW_TTL}
if expire_ms > 0 then
  redis.call('PEXPIRE', fingerprints_key, expire_ms)
  if token ~= '' then
    redis.call('PEXPIRE', batches_key, expire_ms)
  end
end
{_REGISTER_THREAD}
return appended
"""

# Delete a thread found in the registry if it was last active at or before the cutoff
# (or has expired meanwhile). Atomic, so a thread written to after the registry page was
# read survives. KEYS[3...] are the thread's other keys, deleted with it. Returns 1
# (deleted), 2 (already expired) or 0 (active again: kept).
PURGE_THREAD = """
local messages_key = KEYS[1]
local meta_key = KEYS[2]
local cutoff_ms = tonumber(ARGV[1])

local active = redis.call('HGET', meta_key, 'active')
if not active then
  if redis.call('EXISTS', messages_key) == 0 then
    return 2
  end
elseif tonumber(active) > cutoff_ms then
  return 0
end
redis.call('DEL', unpack(KEYS))
return 1
"""

# The next registry entries strictly after the position (after_score, after_member),
# newest first or oldest first: {member, score, member, score, ...}. A position, unlike an
# offset, stays put when entries are removed or rescored between pages, so none of the
# others is skipped or returned twice, however many threads share a score. The entries of
# one score sit at consecutive ranks in member order; a binary search over them finds
# where the position falls, whether or not after_member is still there. Touches one key.
REGISTRY_AFTER = """
local registry_key = KEYS[1]
local newest_first = ARGV[1] == '1'
local after_score = ARGV[2]
local after_member = ARGV[3]
local count = tonumber(ARGV[4])

-- Byte order, as Redis orders members of equal score (Lua's '<' follows the locale).
local function precedes(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local first = redis.call('ZCOUNT', registry_key, '-inf', '(' .. after_score)
local last = redis.call('ZCOUNT', registry_key, '-inf', after_score)
-- The first rank of this score whose member comes after the position (oldest first), or
-- is the position's member or after it (newest first: the entry before that one is next).
while first < last do
  local middle = math.floor((first + last) / 2)
  local member = redis.call('ZRANGE', registry_key, middle, middle)[1]
  local past
  if newest_first then
    past = not precedes(member, after_member)
  else
    past = precedes(after_member, member)
  end
  if past then
    last = middle
  else
    first = middle + 1
  end
end
if not newest_first then
  return redis.call('ZRANGE', registry_key, first, first + count - 1, 'WITHSCORES')
end
local from = redis.call('ZCARD', registry_key) - first
return redis.call('ZREVRANGE', registry_key, from, from + count - 1, 'WITHSCORES')
"""

# Remove registry entries, each only if its score is still the one the caller read: a
# thread written to since then has a newer score and keeps its entry. ARGV holds
# (thread id, score) pairs. Touches one key, so it runs on any Redis Cluster node.
PRUNE_REGISTRY = """
local registry_key = KEYS[1]
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', registry_key, ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', registry_key, ARGV[i])
  end
end
return removed
"""

# Write a whole exported thread: messages in order, metadata as exported, expiry as left
# at export. Refuses (returns 0) when the thread exists, unless `replace` is '1'.
# KEYS[5], the registry, is optional as in APPEND_AND_TRIM.
IMPORT_THREAD = """
local messages_key = KEYS[1]
local batches_key = KEYS[2]
local meta_key = KEYS[3]
local fingerprints_key = KEYS[4]
local registry_key = KEYS[5]
local member = ARGV[1]
local replace = ARGV[2] == '1'
local created_ms = ARGV[3]
local active_ms = ARGV[4]
local ttl_ms = ARGV[5]
local expire_ms = tonumber(ARGV[6])
local labels = ARGV[7]
local first = 8

if not replace and redis.call('EXISTS', messages_key) == 1 then
  return 0
end
redis.call('DEL', messages_key, batches_key, meta_key, fingerprints_key)
for i = first, #ARGV, 1000 do
  redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', meta_key, 'created', created_ms, 'active', active_ms, 'count', #ARGV - first + 1,
  'ttl', ttl_ms, 'labels', labels)
if expire_ms > 0 then
  redis.call('PEXPIRE', messages_key, expire_ms)
  redis.call('PEXPIRE', meta_key, expire_ms)
end
if registry_key then
  redis.call('ZADD', registry_key, active_ms, member)
end
return 1
"""

# Rekey: replace entries the client re-encrypted, each only if it is still in the list exactly
# as the client read it. Concurrent trims shift positions, so entries are found by value, not
# by the index they had; one trimmed away or changed meanwhile is left alone, and appends
# are never touched. Equal entries are matched in list order. LSET keeps the thread's TTL.
# ARGV holds {entry as read, replacement} pairs in list order. Returns how many were replaced.
REPLACE_UNCHANGED = """
local messages_key = KEYS[1]

local positions = {}  -- entry -> its positions, the smallest last
local current = redis.call('LRANGE', messages_key, 0, -1)
for position = #current, 1, -1 do
  local entry = current[position]
  local found = positions[entry]
  if found == nil then
    found = {}
    positions[entry] = found
  end
  found[#found + 1] = position - 1
end

local replaced = 0
for i = 1, #ARGV, 2 do
  local found = positions[ARGV[i]]
  if found ~= nil and #found > 0 then
    redis.call('LSET', messages_key, table.remove(found), ARGV[i + 1])
    replaced = replaced + 1
  end
end
return replaced
"""
