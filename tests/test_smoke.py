from agent_framework_redis_store import RedisChatMessageStore

from .scripted import user_message


async def test_append_and_list(redis_url: str) -> None:
    async with RedisChatMessageStore(redis_url) as store:
        await store.add_messages([user_message("hi"), user_message("there")])
        assert [m.text for m in await store.list_messages()] == ["hi", "there"]


def test_an_embedded_server_whose_chosen_port_was_taken_starts_on_another(redis_url: str) -> None:
    # As when a second test suite's server binds the port between this one's choice and its bind.
    import redis as sync_redis

    from agent_framework_redis_store.testing import EmbeddedRedis

    taken = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with sync_redis.Redis.from_url(redis_url) as theirs:
        theirs.set("theirs", "kept")
        server = EmbeddedRedis()
        server.port = taken
        with server:
            assert server.port != taken
            with sync_redis.Redis.from_url(server.url) as ours:
                ours.flushall()
        assert theirs.get("theirs") == b"kept"
