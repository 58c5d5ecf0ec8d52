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
