local messages_key, batches_key, meta_key, index_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local registry_key = KEYS[5]  -- absent on Redis Cluster
local h = read_header()  -- h.count: how many of the payloads are the seed
-- ARGV[FIRST_OWN_ARG..]: n payloads, then their n index entries
local n = (#ARGV - FIRST_OWN_ARG + 1) / 2
local first = FIRST_OWN_ARG

if already_applied(h, batches_key) then
  return -1
end
local stored_labels = check_bookkeeping(h, meta_key, registry_key)
if h.count > 0 and redis.call('EXISTS', messages_key) == 1 then
  first = first + h.count
end
local final = FIRST_OWN_ARG + n - 1
local length
if first <= final then
  local newest = checked_index(messages_key, index_key)
  length = push(messages_key, ARGV, first, final)
  local covered = push_index(index_key, newest, ARGV, first + n, final + n, length)
  length = trim(messages_key, index_key, meta_key, h.max_messages, length, covered,
    {values = ARGV, first = first + n, count = final - first + 1})
else
  length = redis.call('LLEN', messages_key)
end
finish_append(h, messages_key, batches_key, meta_key, registry_key, stored_labels, length,
  {batches_key, meta_key, index_key})
return length
