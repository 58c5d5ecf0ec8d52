from agent_framework_redis_store import RedisChatMessageStore

from .scripted import user_message


async def test_append_and_list(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url) as store:
        await store.add_messages([user_message("hi"), user_message("there")])
        assert [m.text for m in await store.list_messages()] == ["hi", "there"]
