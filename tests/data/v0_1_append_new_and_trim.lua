-- append_new_and_trim
local BATCH_TOKENS_KEPT = 256
local FINGERPRINTS_KEPT = 256
local FINGERPRINT_WIDTH = 17
local NEWEST_MARK_WIDTH = 16

-- ARGV[1..8]: max_messages, ttl_ms, token, now_us, count, register ('1'/'0'), labels, member.
-- A script's own arguments start at ARGV[FIRST_OWN_ARG].
local FIRST_OWN_ARG = 9
local function read_header()
  return {
    max_messages = tonumber(ARGV[1]), ttl_ms = tonumber(ARGV[2]), token = ARGV[3], now_us = ARGV[4],
    count = tonumber(ARGV[5]), register = ARGV[6] == '1', labels = ARGV[7], member = ARGV[8],
  }
end

-- A batch whose token was already applied (a retried append whose reply was lost).
local function already_applied(h, batches_key)
  return h.token ~= '' and redis.call('ZSCORE', batches_key, h.token)
end

local function mark(payload)
  return string.sub(redis.sha1hex(payload), 1, NEWEST_MARK_WIDTH)
end

-- An index entry's value: tokens, negative for a message that continues an earlier group.
local function entry_value(entry)
  return tonumber(string.match(entry, '^-?%d+'))
end

-- The index's newest entry if the index still describes the message list (that entry marks
-- the newest message); otherwise the index is deleted and nil returned.
local function checked_index(messages_key, index_key)
  local newest = redis.call('LINDEX', index_key, -1)
  if not newest then
    return nil
  end
  local message = redis.call('LINDEX', messages_key, -1)
  if message and string.match(newest, '|(%x+)$') == mark(message) then
    return newest
  end
  redis.call('DEL', index_key)
  return nil
end

-- RPUSH ARGV[first..final] in chunks (unpack() is bounded by the Lua stack); the new length.
local function push(key, first, final)
  local length = nil
  for i = first, final, 1000 do
    length = redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, final)))
  end
  return length or redis.call('LLEN', key)
end

-- Index the messages just pushed: ARGV[first..final] hold their entries, the newest already
-- marked by the caller; the previous newest entry (`newest`, if any) loses its mark. Returns
-- the index's length: how many of the newest messages it covers.
local function push_index(index_key, newest, first, final)
  if newest then
    redis.call('LSET', index_key, -1, string.match(newest, '^-?%d+'))
  end
  return push(index_key, first, final)
end

-- Keep at most max_messages (0: all), cutting only where a group starts: the first kept
-- message may not continue a group whose start would be dropped, so the thread may keep
-- fewer. `covered`: how many of the newest messages the index covers; the others count as
-- group starts. The meta hash's 'first' counts every message ever trimmed (absolute
-- positions, for summaries). Returns the length.
local function trim(messages_key, index_key, meta_key, max_messages, length, covered)
  if max_messages <= 0 or length <= max_messages then
    return length
  end
  local offset = length - covered  -- the list position of the index's first entry
  local cut = length - max_messages
  while cut < length and cut >= offset and entry_value(redis.call('LINDEX', index_key, cut - offset)) < 0 do
    cut = cut + 1
  end
  redis.call('LTRIM', messages_key, cut, -1)
  redis.call('LTRIM', index_key, math.max(cut - offset, 0), -1)
  redis.call('HINCRBY', meta_key, 'first', cut)
  return length - cut
end

-- The expiry every key of the thread gets: this writer's TTL, which also slides the message
-- list's; or, from a writer without a TTL, what is left of the list's own, so that no
-- companion key (batches, index, meta, ...) outlives the messages it describes.
-- Then the batch token is recorded (the oldest forgotten) and the registry updated:
-- created/active (milliseconds of the writer's clock, taken from now_us as a string, exact
-- whatever Lua's number formatting does), count, ttl and labels ('' keeps the stored ones)
-- in the meta hash, and, when registry_key is given (standalone Redis), the prefix's registry.
local function finish_append(h, messages_key, batches_key, meta_key, registry_key, length, companions)
  local expire_ms = h.ttl_ms
  if h.ttl_ms > 0 then
    redis.call('PEXPIRE', messages_key, h.ttl_ms)
  else
    expire_ms = math.max(redis.call('PTTL', messages_key), 0)
  end
  if h.token ~= '' then
    redis.call('ZADD', batches_key, h.now_us, h.token)
    redis.call('ZREMRANGEBYRANK', batches_key, 0, -(BATCH_TOKENS_KEPT + 1))
  end
  if h.register then
    local now_ms = string.sub(h.now_us, 1, -4)
    redis.call('HSETNX', meta_key, 'created', now_ms)
    if h.labels ~= '' then
      redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', h.ttl_ms, 'labels', h.labels)
    else
      redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', h.ttl_ms)
    end
    if registry_key then
      redis.call('ZADD', registry_key, now_ms, h.member)
    end
  end
  if expire_ms > 0 then
    for _, key in ipairs(companions) do
      redis.call('PEXPIRE', key, expire_ms)
    end
  end
end


local messages_key, batches_key, meta_key, index_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local fingerprints_key = KEYS[5]
local registry_key = KEYS[6]  -- absent on Redis Cluster
local h = read_header()  -- h.count: the batch's size
local count = h.count
-- ARGV[FIRST_OWN_ARG..]: `count` fingerprints, then `count` payloads, then their `count` index entries
local first_payload = FIRST_OWN_ARG + count
local first_entry = first_payload + count

if already_applied(h, batches_key) then
  return 0
end

local known_count = 0
local newest_known = redis.call('LINDEX', fingerprints_key, -1)
if newest_known then
  local newest = redis.call('LINDEX', messages_key, -1)
  if newest and mark(newest) == string.sub(newest_known, FINGERPRINT_WIDTH + 1) then
    known_count = redis.call('LLEN', fingerprints_key)
  else
    redis.call('DEL', fingerprints_key)
  end
end
-- A batch shorter than the known list can only overlap its newest `count` entries.
local read = math.min(known_count, count)
local known = {}
if read > 0 then
  for i, entry in ipairs(redis.call('LRANGE', fingerprints_key, -read, -1)) do
    known[i] = string.sub(entry, 1, FINGERPRINT_WIDTH)
  end
end

local function incoming(i)
  return ARGV[FIRST_OWN_ARG + i - 1]
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
  local final = first_payload + count - 1
  local newest = checked_index(messages_key, index_key)
  length = push(messages_key, first_payload + skip, final)
  local covered = push_index(index_key, newest, first_entry + skip, first_entry + count - 1)
  length = trim(messages_key, index_key, meta_key, h.max_messages, length, covered)
  local kept = FINGERPRINTS_KEPT
  if h.max_messages > 0 and h.max_messages < kept then
    kept = h.max_messages
  end
  local fresh = {}
  for i = math.max(skip + 1, count - kept + 1), count do
    fresh[#fresh + 1] = incoming(i)
  end
  fresh[#fresh] = fresh[#fresh] .. mark(ARGV[final])
  for i = 1, #fresh, 1000 do
    redis.call('RPUSH', fingerprints_key, unpack(fresh, i, math.min(i + 999, #fresh)))
  end
  redis.call('LTRIM', fingerprints_key, -kept, -1)
end

finish_append(h, messages_key, batches_key, meta_key, registry_key, length,
  {batches_key, meta_key, index_key, fingerprints_key})
return appended
