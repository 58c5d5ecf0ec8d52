"""Every Lua script of the store. The store's Redis protocol can be read in this file.

Scripts run atomically on the server: no other client observes a state between their
commands, which is what keeps a thread within ``max_messages`` at every instant and each
batch contiguous, with any number of concurrent writers.
"""

from __future__ import annotations

__all__ = ["APPEND_AND_TRIM", "BATCH_TOKENS_KEPT", "REPLACE_UNCHANGED"]

# How many recent batch tokens a thread remembers. A retry arrives within seconds, long
# before this many other batches could have been written to the same thread.
BATCH_TOKENS_KEPT = 256

# Append a batch, trim to the newest max_messages and refresh the TTL, in one round trip.
# A batch whose token was already applied is not applied again (a retried append whose
# reply was lost). The first seed_count payloads are written only if the thread does not
# exist yet (the store's `messages=` seed). Returns {length, applied (1/0)}.
APPEND_AND_TRIM = f"""
local messages_key = KEYS[1]
local batches_key = KEYS[2]
local max_messages = tonumber(ARGV[1])
local ttl_ms = tonumber(ARGV[2])
local token = ARGV[3]
local token_score = ARGV[4]
local seed_count = tonumber(ARGV[5])
local first = 6

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
return {{length or redis.call('LLEN', messages_key), 1}}
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
