-- append_new_and_trim
local BATCH_TOKENS_KEPT = 64
local FINGERPRINTS_KEPT = 256
local FINGERPRINT_WIDTH = 9
local HEX_FINGERPRINT_WIDTH = 17
local NEWEST_MARK_WIDTH = 16

-- urllib.parse.quote(s, safe=''): RFC 3986 unreserved characters stay, every other byte is %XX.
local function quote(s)
  return (string.gsub(s, '[^%w%-%._~]', function(c) return string.format('%%%02X', string.byte(c)) end))
end

-- The key prefix of a prefix's registry key ('<prefix>:registry').
local function prefix_of(registry_key)
  return string.sub(registry_key, 1, -(#':registry' + 1))
end

-- The label index keys of a thread's labels (the meta hash's JSON; '' or nil: none).
local function label_keys(prefix, labels)
  local keys = {}
  if not labels or labels == '' then
    return keys
  end
  local ok, decoded = pcall(cjson.decode, labels)
  if not ok or type(decoded) ~= 'table' then
    return keys
  end
  for name, value in pairs(decoded) do
    keys[#keys + 1] = prefix .. ':label:' .. quote(name) .. '=' .. quote(tostring(value))
  end
  return keys
end

-- Index `member` by `score` under its labels `new`, out of the indexes of `old` it left.
local function index_labels(prefix, member, old, new, score)
  local keys = label_keys(prefix, new)
  if old and old ~= new then
    local kept = {}
    for _, key in ipairs(keys) do
      kept[key] = true
    end
    for _, key in ipairs(label_keys(prefix, old)) do
      if not kept[key] then
        redis.call('ZREM', key, member)
      end
    end
  end
  for _, key in ipairs(keys) do
    redis.call('ZADD', key, score, member)
  end
end

-- After a thread entered the registry: a registry that was empty until now belongs to a prefix
-- whose every thread is written with its labels indexed, so the label indexes are complete
-- (a prefix with threads from before the label indexes needs a reindex instead).
local function mark_labels_complete(registry_key, added)
  if added == 1 and redis.call('ZCARD', registry_key) == 1 then
    redis.call('SET', prefix_of(registry_key) .. ':label-index', 'complete')
  end
end

-- An empty registry leaves nothing of the prefix behind (a new first thread marks it again).
local function forget_empty_registry(registry_key)
  if redis.call('EXISTS', registry_key) == 0 then
    redis.call('DEL', prefix_of(registry_key) .. ':label-index')
  end
end

-- Take `member` out of the indexes of its labels.
local function unindex_labels(prefix, member, labels)
  for _, key in ipairs(label_keys(prefix, labels)) do
    redis.call('ZREM', key, member)
  end
end


-- A key's bytes in hex: an error reply carries any key intact (errors.translate_redis_errors decodes it).
local function hex(key)
  return (string.gsub(key, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function checked(expected, command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    if string.find(reply.err, 'WRONGTYPE', 1, true) then
      error('WRONGTYPE_KEY ' .. expected .. ' ' .. hex(key))  -- a string: Redis 6 and 7 both pass it on
    end
    return redis.call(command, key, ...)  -- any other error (NOPERM, ...) as Redis raises it
  end
  return reply
end

-- A meta hash field the script computes with (first, boundary): its integer (0 when absent), or an
-- error holding ``CORRUPT_META <field> <key in hex>`` before anything is written. Only what HINCRBY
-- also takes, and Lua's numbers hold exactly: tonumber alone accepts '1e3', '0x10', ' 5' or 40
-- digits, on which a trim's HINCRBY fails after the append's writes.
local function integer_field(meta_key, field, value)
  if not value then
    return 0
  end
  if #value > 15 or not (value == '0' or string.match(value, '^[1-9]%d*$')) then
    error('CORRUPT_META ' .. field .. ' ' .. hex(meta_key))
  end
  return tonumber(value)
end

local function mark(payload)
  return string.sub(redis.sha1hex(payload), 1, NEWEST_MARK_WIDTH)
end

-- An index entry's value: tokens, negative for a message that continues an earlier group; nil
-- for anything else (a damaged index).
local function entry_value(entry)
  return tonumber(string.match(entry, '^(-?%d+)$') or string.match(entry, '^(-?%d+)|%x+$'))
end

-- The value of the index's newest entry `newest` if it marks `message`, the list's newest.
local function marked_value(newest, message)
  local value, newest_mark = string.match(newest, '^(-?%d+)|(%x+)$')
  if value and message and newest_mark == mark(message) then
    return value
  end
  return nil
end

-- Can the stored message at `position` continue a group, as the index says? Its body tells when
-- the script can read it (JSON, neither sealed nor compressed): only one with a call, a result or
-- an approval can (groups.may_link). Otherwise the index is taken at its word.
local function may_continue(messages_key, position)
  local body = redis.call('LINDEX', messages_key, position)
  if not body or string.byte(body, 1) ~= 123 then  -- '{'
    return true
  end
  return string.find(body, '_result"', 1, true) ~= nil or string.find(body, '_call"', 1, true) ~= nil
    or string.find(body, 'approval_re', 1, true) ~= nil
end


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
  return h.token ~= '' and checked('zset', 'ZSCORE', batches_key, h.token)
end

-- Before the first write: the meta hash and, when the script keeps them (standalone Redis), the
-- registry and every label index the append touches must be of their types. Returns the
-- thread's stored labels (false: none).
local function check_bookkeeping(h, meta_key, registry_key)
  local stored = checked('hash', 'HMGET', meta_key, 'labels', 'first')
  local stored_labels = stored[1]
  integer_field(meta_key, 'first', stored[2])  -- a trim adds to it (HINCRBY) after the writes
  if registry_key and h.register then
    checked('zset', 'ZSCORE', registry_key, h.member)
    local prefix = prefix_of(registry_key)
    local labels = h.labels ~= '' and h.labels or stored_labels
    for _, key in ipairs(label_keys(prefix, labels)) do
      checked('zset', 'ZSCORE', key, h.member)
    end
    if stored_labels and stored_labels ~= labels then  -- relabelled: it leaves these
      for _, key in ipairs(label_keys(prefix, stored_labels)) do
        checked('zset', 'ZSCORE', key, h.member)
      end
    end
  end
  return stored_labels
end

-- The value of the index's newest entry if the index still describes the message list (that
-- entry marks the newest message); otherwise the index is deleted and nil returned.
local function checked_index(messages_key, index_key)
  local newest = checked('list', 'LINDEX', index_key, -1)
  if not newest then
    return nil
  end
  local value = marked_value(newest, redis.call('LINDEX', messages_key, -1))
  if not value then
    redis.call('DEL', index_key)
  end
  return value
end

-- RPUSH values[first..final] in chunks (unpack() is bounded by the Lua stack); the new length.
local function push(key, values, first, final)
  local length = nil
  for i = first, final, 1000 do
    length = redis.call('RPUSH', key, unpack(values, i, math.min(i + 999, final)))
  end
  return length or redis.call('LLEN', key)
end

-- Index the messages just pushed (the list is now `length` long): values[first..final] hold
-- their entries, the newest already marked; the previous newest entry (its value `newest`, if
-- any) loses its mark. Returns how many of the newest messages the index covers. An index
-- longer than the list does not describe it: only the new entries stay.
local function push_index(index_key, newest, values, first, final, length)
  if newest then
    redis.call('LSET', index_key, -1, newest)
  end
  local covered = push(index_key, values, first, final)
  if covered > length then
    covered = final - first + 1
    redis.call('LTRIM', index_key, -covered, -1)
  end
  return covered
end

-- Keep at most max_messages (0: all), cutting only where a group starts: the first kept
-- message may not continue a group whose start would be dropped, so the thread may keep
-- fewer, never more (none, when its newest group alone is longer). `covered`: how many of
-- the newest messages the index covers; the others count as group starts. `batch` holds the
-- entries of the messages just pushed (batch.values[batch.first..], the newest batch.count
-- messages): the caller's own word, read from the arguments. The stored entries are a hint:
-- one that is not an entry, or says a message continues a group where the message's body
-- says it cannot (may_continue), ends the walk there, so the cut never goes further than
-- max_messages and the groups the list really holds require, and the stored part of the
-- index goes. The meta hash's 'first' counts every message ever trimmed (absolute positions,
-- for summaries). Returns the length.
local function trim(messages_key, index_key, meta_key, max_messages, length, covered, batch)
  if max_messages <= 0 or length <= max_messages then
    return length
  end
  local offset = length - covered  -- the list position of the index's first entry
  local batch_start = length - batch.count
  local cut = length - max_messages
  while cut < length and cut >= offset do
    local value
    if cut >= batch_start then
      value = entry_value(batch.values[batch.first + cut - batch_start]) or 0
    else
      value = entry_value(redis.call('LINDEX', index_key, cut - offset))
      if value == nil or (value < 0 and not may_continue(messages_key, cut)) then
        redis.call('LTRIM', index_key, -batch.count, -1)
        offset = batch_start
        value = 0
      end
    end
    if value >= 0 then
      break
    end
    cut = cut + 1
  end
  -- cut == length: the newest group alone is longer than max_messages. It cannot be kept whole
  -- within the limit, and a cut inside it would orphan its results: it goes, as a group.
  redis.call('LTRIM', messages_key, cut, -1)
  redis.call('LTRIM', index_key, math.max(cut - offset, 0), -1)
  redis.call('HINCRBY', meta_key, 'first', cut)
  return length - cut
end

-- Record an applied batch's token (its digest): the set keeps the newest BATCH_TOKENS_KEPT,
-- trimmed before the add so that it never holds more and stays a listpack. A set that was
-- larger was written by an earlier version (raw tokens, which this version's digests never
-- match, in a skiplist, which removals do not shrink): it is dropped and restarts compact.
local function remember_batch(batches_key, token, now_us)
  if redis.call('ZREMRANGEBYRANK', batches_key, 0, -BATCH_TOKENS_KEPT) > 1 then
    redis.call('DEL', batches_key)
  end
  redis.call('ZADD', batches_key, now_us, token)
end

-- The expiry every key of the thread gets: this writer's TTL, which also slides the message
-- list's; or, from a writer without a TTL, what is left of the list's own, so that no
-- companion key (batches, index, meta, ...) outlives the messages it describes.
-- Then the batch token is recorded (the oldest forgotten) and the registry updated:
-- created/active (milliseconds of the writer's clock, taken from now_us as a string, exact
-- whatever Lua's number formatting does), count, ttl and labels ('' keeps the stored ones,
-- `stored_labels` as check_bookkeeping read them) in the meta hash, and, when registry_key is
-- given (standalone Redis), the prefix's registry and its label indexes.
local function finish_append(h, messages_key, batches_key, meta_key, registry_key, stored_labels, length, companions)
  local expire_ms = h.ttl_ms
  if h.ttl_ms > 0 then
    redis.call('PEXPIRE', messages_key, h.ttl_ms)
  else
    expire_ms = math.max(redis.call('PTTL', messages_key), 0)
  end
  if h.token ~= '' then
    remember_batch(batches_key, h.token, h.now_us)
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
      mark_labels_complete(registry_key, redis.call('ZADD', registry_key, now_ms, h.member))
      local labels = h.labels ~= '' and h.labels or stored_labels
      index_labels(prefix_of(registry_key), h.member, stored_labels, labels, now_ms)
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
-- ARGV[FIRST_OWN_ARG..]: `count` fingerprints, then `count` payloads, then their `count` index
-- entries, then any number of alternate sets of `count` fingerprints: the same messages under
-- the digest keys of an encryption's other keys (fingerprints stored before a key rotation).
local first_payload = FIRST_OWN_ARG + count
local first_entry = first_payload + count
local alternates = math.floor((#ARGV - first_entry - count + 1) / count)
local ID = 105  -- string.byte('i'): the kind of a fingerprint made from a message id

if already_applied(h, batches_key) then
  return 0
end
local stored_labels = check_bookkeeping(h, meta_key, registry_key)
local newest_known = checked('list', 'LINDEX', fingerprints_key, -1)
local length = checked('list', 'LLEN', messages_key)

local known_count = 0
if newest_known then
  local newest = redis.call('LINDEX', messages_key, -1)
  if newest and mark(newest) == string.sub(newest_known, -NEWEST_MARK_WIDTH) then
    known_count = redis.call('LLEN', fingerprints_key)
  else
    redis.call('DEL', fingerprints_key)
  end
end
-- A stored fingerprint, without the mark the newest carries (and an earlier version may
-- have left on others). Earlier versions wrote the digest as hex: read as its bytes.
local function unhex(pair)
  return string.char(tonumber(pair, 16))
end
local function stored_fingerprint(entry)
  if #entry == HEX_FINGERPRINT_WIDTH or #entry == HEX_FINGERPRINT_WIDTH + NEWEST_MARK_WIDTH then
    return string.sub(entry, 1, 1) .. (string.gsub(string.sub(entry, 2, HEX_FINGERPRINT_WIDTH), '%x%x', unhex))
  end
  return string.sub(entry, 1, FINGERPRINT_WIDTH)
end
local has_ids = false
for i = FIRST_OWN_ARG, first_payload - 1 do
  if string.byte(ARGV[i], 1) == ID then
    has_ids = true
    break
  end
end
-- Without ids, a batch shorter than the known list can only overlap its newest `count` entries.
local read = has_ids and known_count or math.min(known_count, count)
local known = {}
local known_ids = {}  -- the known fingerprints made from ids, as a set
if read > 0 then
  for i, entry in ipairs(redis.call('LRANGE', fingerprints_key, -read, -1)) do
    local fingerprint = stored_fingerprint(entry)
    known[i] = fingerprint
    if string.byte(fingerprint, 1) == ID then
      known_ids[fingerprint] = true
    end
  end
end

local base = FIRST_OWN_ARG  -- where the set of fingerprints compared starts
local function incoming(i)
  return ARGV[base + i - 1]
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

local function overlap()
  if count >= known_count then
    for last = known_count, count do
      if ends_with_known(last, known_count) then
        return last
      end
    end
  end
  for last = math.min(count, known_count - 1), 1, -1 do
    if ends_with_known(last, last) then
      return last
    end
  end
  return 0
end

local skip = 0
local rewrite = false  -- the stored fingerprints are another key's: replace them all
if known_count > 0 then
  skip = overlap()
  for a = 1, alternates do
    if skip > 0 then
      break
    end
    base = first_entry + count + (a - 1) * count
    skip = overlap()
    rewrite = skip > 0
  end
  base = FIRST_OWN_ARG
end

-- Is message i's id known (under the current digest key or an earlier one), or earlier in the batch?
local function repeated_id(i)
  if string.byte(ARGV[FIRST_OWN_ARG + i - 1], 1) ~= ID then
    return false
  end
  if known_ids[ARGV[FIRST_OWN_ARG + i - 1]] then
    return true
  end
  for a = 1, alternates do
    if known_ids[ARGV[first_entry + count + (a - 1) * count + i - 1]] then
      return true
    end
  end
  return false
end
local payloads, entries, fresh = {}, {}, {}
if rewrite then  -- the batch's repeats are fingerprinted again, under the current key
  for i = 1, skip do
    fresh[i] = ARGV[FIRST_OWN_ARG + i - 1]
  end
end
for i = skip + 1, count do
  if not repeated_id(i) then
    local fingerprint = ARGV[FIRST_OWN_ARG + i - 1]
    if string.byte(fingerprint, 1) == ID then
      known_ids[fingerprint] = true
    end
    payloads[#payloads + 1] = ARGV[first_payload + i - 1]
    entries[#entries + 1] = ARGV[first_entry + i - 1]
    fresh[#fresh + 1] = fingerprint
  end
end
local appended = #payloads

local newest_mark = nil
if appended > 0 then
  -- The caller marked the batch's last entry; if that message is a repeat, the newest appended is marked here.
  newest_mark = mark(payloads[appended])
  if entries[appended] ~= ARGV[first_entry + count - 1] then
    entries[appended] = entries[appended] .. '|' .. newest_mark
  end
  local newest = checked_index(messages_key, index_key)
  length = push(messages_key, payloads, 1, appended)
  local covered = push_index(index_key, newest, entries, 1, appended, length)
  length = trim(messages_key, index_key, meta_key, h.max_messages, length, covered,
    {values = entries, first = 1, count = appended})
elseif rewrite then
  newest_mark = string.sub(newest_known, -NEWEST_MARK_WIDTH)
end
if #fresh > 0 and length == 0 then  -- all trimmed away: nothing left to repeat
  redis.call('DEL', fingerprints_key)
elseif #fresh > 0 then
  local kept = FINGERPRINTS_KEPT
  if h.max_messages > 0 and h.max_messages < kept then
    kept = h.max_messages
  end
  local from = math.max(#fresh - kept + 1, 1)
  fresh[#fresh] = fresh[#fresh] .. newest_mark
  if rewrite then
    redis.call('DEL', fingerprints_key)
  elseif known_count > 0 then  -- the previous newest is no longer the newest: its mark goes
    redis.call('LSET', fingerprints_key, -1, string.sub(newest_known, 1, -NEWEST_MARK_WIDTH - 1))
  end
  push(fingerprints_key, fresh, from, #fresh)
  redis.call('LTRIM', fingerprints_key, -kept, -1)
end

finish_append(h, messages_key, batches_key, meta_key, registry_key, stored_labels, length,
  {batches_key, meta_key, index_key, fingerprints_key})
return appended
