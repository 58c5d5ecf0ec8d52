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

# Rekey: replace entries the client re-encrypted, each only if it is still exactly the entry
# the client read. An entry a concurrent writer trimmed away or shifted is left alone (the
# client reads again and retries it); appends at the tail are never touched. LSET keeps the
# thread's TTL. ARGV holds {index, entry as read, replacement} triples. Returns how many
# entries were replaced.
REPLACE_UNCHANGED = """
local messages_key = KEYS[1]

local replaced = 0
for i = 1, #ARGV, 3 do
  local index = tonumber(ARGV[i])
  local as_read = ARGV[i + 1]
  local replacement = ARGV[i + 2]
  if redis.call('LINDEX', messages_key, index) == as_read then
    redis.call('LSET', messages_key, index, replacement)
    replaced = replaced + 1
  end
end
return replaced
"""
