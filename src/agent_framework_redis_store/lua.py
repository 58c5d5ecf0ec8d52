"""Every Lua script of the store. The store's Redis protocol can be read in this file.

Scripts run atomically on the server: no other client observes a state between their
commands, which is what keeps a thread within ``max_messages`` at every instant and each
batch contiguous, with any number of concurrent writers.
"""

from __future__ import annotations

__all__ = [
    "APPEND_AND_TRIM",
    "BATCH_TOKENS_KEPT",
    "IMPORT_THREAD",
    "PRUNE_REGISTRY",
    "PURGE_THREAD",
]

# How many recent batch tokens a thread remembers. A retry arrives within seconds, long
# before this many other batches could have been written to the same thread.
BATCH_TOKENS_KEPT = 256

# Append a batch, trim to the newest max_messages and refresh the TTL, in one round trip.
# A batch whose token was already applied is not applied again (a retried append whose
# reply was lost). The first seed_count payloads are written only if the thread does not
# exist yet (the store's `messages=` seed). Returns {length, applied (1/0)}.
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
  return {{redis.call('LLEN', messages_key), 0}}
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
if ttl_ms > 0 then
  redis.call('PEXPIRE', messages_key, ttl_ms)
  if token ~= '' then
    redis.call('PEXPIRE', batches_key, ttl_ms)
  end
end

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
  local left = ttl_ms
  if left == 0 then
    left = redis.call('PTTL', messages_key)
  end
  if left > 0 then
    redis.call('PEXPIRE', meta_key, left)
  end
  if registry_key then
    redis.call('ZADD', registry_key, now_ms, member)
  end
end
return {{length or redis.call('LLEN', messages_key), 1}}
"""

# Delete a thread found in the registry if it was last active at or before the cutoff
# (or has expired meanwhile). Atomic, so a thread written to after the registry page was
# read survives. Returns 1 (deleted), 2 (already expired) or 0 (active again: kept).
PURGE_THREAD = """
local messages_key = KEYS[1]
local batches_key = KEYS[2]
local meta_key = KEYS[3]
local cutoff_ms = tonumber(ARGV[1])

local active = redis.call('HGET', meta_key, 'active')
if not active then
  if redis.call('EXISTS', messages_key) == 0 then
    return 2
  end
elseif tonumber(active) > cutoff_ms then
  return 0
end
redis.call('DEL', messages_key, batches_key, meta_key)
return 1
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
# KEYS[4], the registry, is optional as in APPEND_AND_TRIM.
IMPORT_THREAD = """
local messages_key = KEYS[1]
local batches_key = KEYS[2]
local meta_key = KEYS[3]
local registry_key = KEYS[4]
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
redis.call('DEL', messages_key, batches_key, meta_key)
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
