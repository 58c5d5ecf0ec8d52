"""Deleting whole threads: every key they own, their registry entry and their label index entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .cluster import RedisClient, is_cluster
from .errors import is_wrong_type, wrong_type_kept
from .keyspace import Keyspace
from .lua import DELETE_THREAD, delete_thread
from .meta import decode_labels

__all__ = ["Deleted", "delete_threads"]


@dataclass(frozen=True)
class Deleted:
    """What ``delete_threads`` removed."""

    threads: int
    """Threads that had any key."""
    keys: int
    messages: int


async def delete_threads(
    redis: RedisClient, keyspace: Keyspace, thread_ids: Sequence[str], *, count_messages: bool = True
) -> Deleted:
    """Delete every key of each thread, its registry entry and its label index entries.

    Standalone Redis: one script per thread (``DELETE_THREAD``), pipelined, so no append slips
    between the keys' deletion and the entries'. Redis Cluster: the registry and the label
    indexes are in other slots, so the entries go first; an append that recreates a thread
    meanwhile enters it again.
    """
    keys = [keyspace.thread(thread_id) for thread_id in thread_ids]
    if not keys:
        return Deleted(0, 0, 0)
    if not is_cluster(redis):
        await DELETE_THREAD.load(redis)
        pipe = redis.pipeline(transaction=False)
        for thread in keys:
            call = delete_thread(thread, registry_key=keyspace.registry)
            call.script.queue(pipe, call.keys, call.args)
        replies = await pipe.execute()
        return Deleted(
            sum(1 for existed, _ in replies if existed),
            sum(int(existed) for existed, _ in replies),
            sum(int(messages) for _, messages in replies),
        )
    reads = redis.pipeline(transaction=False)
    for thread in keys:
        reads.hget(thread.meta, "labels")
        if count_messages:
            reads.llen(thread.messages)
    # A key of another type (damaged) is deleted all the same: its reply counts as empty.
    found = [None if is_wrong_type(r) else r for r in wrong_type_kept(await reads.execute(raise_on_error=False))]
    labels = found[:: 2 if count_messages else 1]
    entries = redis.pipeline(transaction=False)
    entries.zrem(keyspace.registry, *thread_ids)
    for thread, stored in zip(keys, labels, strict=True):
        for index in keyspace.label_indexes(decode_labels(stored)):
            entries.zrem(index, thread.thread_id)
    entries.exists(keyspace.registry)
    *_, registry_left = await entries.execute()
    deletes = redis.pipeline(transaction=False)
    for thread in keys:
        deletes.delete(*thread.owned)
    if not registry_left:
        # As DELETE_THREAD does; should a thread be entered meanwhile, lists by label only read slower.
        deletes.delete(keyspace.labels_complete)
    existed = (await deletes.execute())[: len(keys)]
    messages = sum(int(n or 0) for n in found[1::2]) if count_messages else 0
    return Deleted(sum(1 for count in existed if count), sum(int(count) for count in existed), messages)
