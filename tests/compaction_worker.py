"""One application instance that compacts one thread, as a separate process.

Used by ``tests/test_long_conversations.py``::

    python -m tests.compaction_worker '{"redis_url": ..., "thread_id": ..., "name": "a", "wait": true}'

Its summarizer pushes ``name`` to the Redis list ``test:started`` when called and, with
``wait``, then blocks until something is pushed to ``test:go:<name>``: the test decides
when it finishes, so the interleaving of two instances is forced, not hoped for. Prints
the ``CompactionResult`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace
from typing import Any

import redis.asyncio

from agent_framework_redis_store import RedisChatMessageStore, SummaryCompaction


class SignallingSummarizer:
    def __init__(self, redis_url: str, name: str, wait: bool) -> None:
        self.redis_url, self.name, self.wait = redis_url, name, wait

    async def get_response(self, request: Any) -> Any:
        # Its blocking read outlives redis-py's default socket timeout (5 s) while other processes start.
        async with redis.asyncio.Redis.from_url(self.redis_url, socket_timeout=60) as client:
            await client.rpush("test:started", self.name)  # type: ignore[misc]
            if self.wait:
                await client.blpop([f"test:go:{self.name}"], timeout=30)  # type: ignore[misc]
        return SimpleNamespace(text=f"summary by {self.name}")


async def main(request: dict[str, Any]) -> None:
    summarizer = SignallingSummarizer(request["redis_url"], request["name"], request.get("wait", False))
    policy = SummaryCompaction(summarizer, trigger_messages=6, keep_last_messages=2, background=False)
    async with RedisChatMessageStore(request["redis_url"], thread_id=request["thread_id"], compaction=policy) as store:
        result = await store.compact()
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
