"""langchain-redis's own tests of its ``RedisChatMessageHistory``, run against this package's.

Ported from langchain-ai/langchain-redis, ``libs/redis/tests/integration_tests/test_chat_message_history.py``
at 8d89e568769165b9269c984a24cdba2c8e997fa2; Copyright (c) LangChain, Inc., MIT License.
Left out: the 14 tests of its RediSearch index (``search_messages``, ``ft()``, ``index_name``,
``overwrite_index``; this package keeps a thread as one list and has no search index).

How they were ported, and nothing else changed (docs/PARITY.md counts the results):
- the import; ``redis_url`` is the suite's private redis-server (flushed before each test);
- ``str(ULID())`` is ``uuid4().hex`` (python-ulid is not a dependency here);
- ``history.delete()`` (drop the search index and every session) is ``history.close()``: it
  was only their clean-up, and a history here holds a loop thread and pools to close;
- ruff's automatic fixes (``List`` is ``list``, imports sorted);
- a deliberate difference is ``xfail(strict=True)`` with its reason, so the count cannot drift.
"""

# Their style, kept as written: broad pytest.raises.
# ruff: noqa: PT011, PT012, B017

import time
from collections.abc import Generator
from typing import cast
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from redis import Redis

from agent_framework_redis_store.langchain import RedisChatMessageHistory


@pytest.fixture
def chat_history(redis_url: str) -> Generator[RedisChatMessageHistory, None, None]:
    session_id = f"test_session_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)
    history.clear()
    try:
        yield history
    finally:
        history.close()


def test_add_and_retrieve_messages(chat_history: RedisChatMessageHistory) -> None:
    chat_history.add_message(HumanMessage(content="Hello, AI!"))
    chat_history.add_message(AIMessage(content="Hello, human!"))

    messages = chat_history.messages
    assert len(messages) == 2
    assert isinstance(messages[0], HumanMessage)
    assert isinstance(messages[1], AIMessage)
    assert messages[0].content == "Hello, AI!"
    assert messages[1].content == "Hello, human!"


def test_clear_messages(chat_history: RedisChatMessageHistory) -> None:
    chat_history.add_message(HumanMessage(content="Test message"))
    assert len(chat_history.messages) == 1

    chat_history.clear()
    assert len(chat_history.messages) == 0


def test_add_multiple_messages(chat_history: RedisChatMessageHistory) -> None:
    messages = [
        HumanMessage(content="Message 1"),
        AIMessage(content="Response 1"),
        HumanMessage(content="Message 2"),
    ]
    for message in messages:
        chat_history.add_message(message)

    assert len(chat_history.messages) == 3
    assert [msg.content for msg in chat_history.messages] == [
        "Message 1",
        "Response 1",
        "Message 2",
    ]


def test_length(chat_history: RedisChatMessageHistory) -> None:
    messages = [HumanMessage(content=f"Message {i}") for i in range(5)]
    for message in messages:
        chat_history.add_message(message)

    assert len(chat_history) == 5


def test_multiple_sessions(redis_url: str) -> None:
    session1 = f"ttl_test_{uuid4().hex}"
    session2 = f"ttl_test_{uuid4().hex}"
    history1 = RedisChatMessageHistory(session_id=session1, redis_url=redis_url)
    history2 = RedisChatMessageHistory(session_id=session2, redis_url=redis_url)

    history1.add_message(HumanMessage(content="Message for session 1"))
    history2.add_message(HumanMessage(content="Message for session 2"))

    assert len(history1.messages) == 1
    assert len(history2.messages) == 1
    assert history1.messages[0].content != history2.messages[0].content

    history1.clear()
    history2.clear()


@pytest.mark.parametrize("message_type", [HumanMessage, AIMessage, SystemMessage])
def test_different_message_types(
    chat_history: RedisChatMessageHistory,
    message_type: type[HumanMessage | AIMessage | SystemMessage],
) -> None:
    message = message_type(content="Test content")
    chat_history.add_message(message)

    retrieved = chat_history.messages[-1]
    assert isinstance(retrieved, BaseMessage)
    assert isinstance(retrieved, message_type)
    assert retrieved.content == "Test content"

    # Use type casting to satisfy mypy
    typed_retrieved = cast(HumanMessage | AIMessage | SystemMessage, retrieved)
    assert typed_retrieved.content == "Test content"


def test_large_number_of_messages(chat_history: RedisChatMessageHistory) -> None:
    large_number = 1000
    messages: list[BaseMessage] = [HumanMessage(content=f"Message {i}") for i in range(large_number)]
    for message in messages:
        chat_history.add_message(message)

    retrieved_messages = chat_history.messages

    for i, message in enumerate(retrieved_messages):
        message_content = message.content
        expected_content = f"Message {i}"
        assert message_content == expected_content, (
            f"Message at index {i} has content '{message_content}', \
            expected '{expected_content}'"
        )

    assert retrieved_messages[-1].content == f"Message {large_number - 1}", (
        f"Last message content is '{retrieved_messages[-1].content}', \
        expected 'Message {large_number - 1}'"
    )


def test_empty_messages(chat_history: RedisChatMessageHistory) -> None:
    assert len(chat_history.messages) == 0


def test_add_message_to_existing_session(redis_url: str) -> None:
    session_id = f"existing_session_{uuid4().hex}"
    history1 = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)
    history1.add_message(HumanMessage(content="First message"))

    history2 = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)
    history2.add_message(HumanMessage(content="Second message"))

    assert len(history1.messages) == 2
    assert len(history2.messages) == 2


def test_chat_history_with_preconfigured_client(redis_url: str) -> None:
    redis_client = Redis.from_url(redis_url)
    session_id = f"test_session_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_client=redis_client)

    history.add_message(HumanMessage(content="Hello, AI!"))
    history.add_message(AIMessage(content="Hello, human!"))

    messages = history.messages
    assert len(messages) == 2
    assert isinstance(messages[0], HumanMessage)
    assert isinstance(messages[1], AIMessage)
    assert messages[0].content == "Hello, AI!"
    assert messages[1].content == "Hello, human!"

    history.clear()


def test_timestamp_sorting(chat_history: RedisChatMessageHistory) -> None:
    """Test that messages are returned in correct timestamp order."""
    # Add messages with small delays to ensure different timestamps
    chat_history.add_message(HumanMessage(content="First message"))
    chat_history.add_message(AIMessage(content="Second message"))
    chat_history.add_message(HumanMessage(content="Third message"))
    chat_history.add_message(AIMessage(content="Fourth message"))

    # Retrieve messages and verify they're in chronological order
    messages = chat_history.messages
    assert len(messages) == 4

    # Check content order
    assert messages[0].content == "First message"
    assert messages[1].content == "Second message"
    assert messages[2].content == "Third message"
    assert messages[3].content == "Fourth message"

    # Check message types
    assert isinstance(messages[0], HumanMessage)
    assert isinstance(messages[1], AIMessage)
    assert isinstance(messages[2], HumanMessage)
    assert isinstance(messages[3], AIMessage)


def test_session_sensitive_clear(redis_url: str) -> None:
    """Test that clear() only clears messages for the current session."""
    session1_id = f"session1_{uuid4().hex}"
    session2_id = f"session2_{uuid4().hex}"

    history1 = RedisChatMessageHistory(session_id=session1_id, redis_url=redis_url)
    history2 = RedisChatMessageHistory(session_id=session2_id, redis_url=redis_url)

    try:
        # Add messages to both sessions
        history1.add_message(HumanMessage(content="Session 1 message 1"))
        history1.add_message(AIMessage(content="Session 1 message 2"))

        history2.add_message(HumanMessage(content="Session 2 message 1"))
        history2.add_message(AIMessage(content="Session 2 message 2"))

        # Verify both sessions have messages
        assert len(history1.messages) == 2
        assert len(history2.messages) == 2

        # Clear only session 1
        history1.clear()

        # Verify session 1 is empty but session 2 still has messages
        assert len(history1.messages) == 0
        assert len(history2.messages) == 2

        # Verify session 2 messages are intact
        session2_messages = history2.messages
        assert session2_messages[0].content == "Session 2 message 1"
        assert session2_messages[1].content == "Session 2 message 2"

    finally:
        # Clean up both sessions
        history1.clear()
        history2.clear()


def test_empty_session_id(redis_url: str) -> None:
    """Test behavior with empty session ID."""
    with pytest.raises(ValueError):
        RedisChatMessageHistory(session_id="", redis_url=redis_url)


def test_none_session_id(redis_url: str) -> None:
    """Test behavior with None session ID."""
    with pytest.raises(ValueError):
        RedisChatMessageHistory(session_id=None, redis_url=redis_url)  # type: ignore


def test_unicode_session_id(redis_url: str) -> None:
    """Test behavior with Unicode characters in session ID."""
    unicode_session_id = f"session_测试_🚀_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=unicode_session_id, redis_url=redis_url)

    try:
        history.add_message(HumanMessage(content="Unicode session test"))
        messages = history.messages
        assert len(messages) == 1
        assert messages[0].content == "Unicode session test"
    finally:
        history.close()


def test_empty_message_content(chat_history: RedisChatMessageHistory) -> None:
    """Test adding messages with empty content."""
    history = chat_history

    # Test empty string content
    history.add_message(HumanMessage(content=""))
    history.add_message(AIMessage(content=""))

    messages = history.messages
    assert len(messages) == 2
    assert messages[0].content == ""
    assert messages[1].content == ""


def test_very_large_message_content(chat_history: RedisChatMessageHistory) -> None:
    """Test adding messages with very large content."""
    large_content = "x" * 100000  # 100KB message
    chat_history.add_message(HumanMessage(content=large_content))

    messages = chat_history.messages
    assert len(messages) == 1
    assert messages[0].content == large_content


def test_unicode_message_content(chat_history: RedisChatMessageHistory) -> None:
    """Test messages with Unicode content including emojis."""
    unicode_content = "Hello 世界! 🌍🚀 Testing Unicode: αβγδε ñáéíóú"
    chat_history.add_message(HumanMessage(content=unicode_content))

    messages = chat_history.messages
    assert len(messages) == 1
    assert messages[0].content == unicode_content


def test_special_characters_in_content(chat_history: RedisChatMessageHistory) -> None:
    """Test messages with special characters that might break JSON or search."""
    special_content = 'Test with "quotes", {brackets}, [arrays], and \\ backslashes'
    chat_history.add_message(HumanMessage(content=special_content))
    messages = chat_history.messages
    assert len(messages) == 1
    assert messages[0].content == special_content


def test_message_with_additional_kwargs(chat_history: RedisChatMessageHistory) -> None:
    """Test messages with additional_kwargs are preserved."""
    message = HumanMessage(
        content="Test message",
        additional_kwargs={"custom_field": "custom_value", "number": 42},
    )
    chat_history.add_message(message)

    messages = chat_history.messages
    assert len(messages) == 1
    assert messages[0].content == "Test message"
    assert messages[0].additional_kwargs == {
        "custom_field": "custom_value",
        "number": 42,
    }


def test_invalid_redis_url() -> None:
    """Test behavior with invalid Redis URL."""
    with pytest.raises(Exception):  # Could be ConnectionError or similar
        history = RedisChatMessageHistory(session_id="test", redis_url="redis://invalid-host:6379")
        # Try to use it to trigger connection
        history.add_message(HumanMessage(content="Test"))


def test_custom_key_prefix(redis_url: str) -> None:
    """Test custom key prefix functionality."""
    custom_prefix = "custom_chat:"
    session_id = f"test_{uuid4().hex}"

    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url, key_prefix=custom_prefix)

    try:
        history.add_message(HumanMessage(content="Test with custom prefix"))
        messages = history.messages
        assert len(messages) == 1
        assert messages[0].content == "Test with custom prefix"
    finally:
        history.close()


def test_clear_empty_session(chat_history: RedisChatMessageHistory) -> None:
    """Test clearing an empty session doesn't cause errors."""
    # Should not raise any exceptions
    chat_history.clear()
    assert len(chat_history.messages) == 0


def test_clear_large_session(redis_url: str) -> None:
    """Test clearing a session with many messages."""
    session_id = f"large_clear_test_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)

    try:
        # Add many messages
        for i in range(100):
            history.add_message(HumanMessage(content=f"Message {i}"))

        assert len(history.messages) == 100

        # Clear all messages
        history.clear()
        assert len(history.messages) == 0
    finally:
        history.close()


def test_message_ordering_with_rapid_additions(redis_url: str) -> None:
    """Test message ordering when messages are added very rapidly."""
    session_id = f"rapid_test_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)

    try:
        # Add messages very rapidly
        for i in range(20):
            history.add_message(HumanMessage(content=f"Rapid message {i}"))

        messages = history.messages
        assert len(messages) == 20

        # Verify ordering (should be chronological)
        for i, message in enumerate(messages):
            assert message.content == f"Rapid message {i}"
    finally:
        history.close()


@pytest.mark.xfail(
    strict=True,
    reason=(
        "deliberate: ttl=0 is refused with a ValueError saying to pass ttl=None (langchain-redis applies ttl "
        'only when truthy, so its 0 means no expiry; the test itself expects "expire immediately")'
    ),
)
def test_ttl_edge_cases(redis_url: str) -> None:
    """Test TTL edge cases."""
    session_id = f"ttl_edge_test_{uuid4().hex}"

    # Test TTL = 0 (should expire immediately)
    history_zero = RedisChatMessageHistory(session_id=f"{session_id}_zero", redis_url=redis_url, ttl=0)

    try:
        history_zero.add_message(HumanMessage(content="Should expire immediately"))
        # Message might already be expired
        time.sleep(0.1)
        messages = history_zero.messages
        # Could be 0 or 1 depending on timing
        assert len(messages) <= 1
    finally:
        history_zero.clear()

    # Test very large TTL
    history_large = RedisChatMessageHistory(
        session_id=f"{session_id}_large",
        redis_url=redis_url,
        ttl=2147483647,  # Max 32-bit int
    )

    try:
        history_large.add_message(HumanMessage(content="Long TTL message"))
        messages = history_large.messages
        assert len(messages) == 1
    finally:
        history_large.clear()


def test_id_property(chat_history: RedisChatMessageHistory) -> None:
    """Test the id property returns session_id."""
    assert chat_history.id == chat_history.session_id


def test_messages_property_empty(chat_history: RedisChatMessageHistory) -> None:
    """Test messages property when no messages exist."""
    messages = chat_history.messages
    assert isinstance(messages, list)
    assert len(messages) == 0


def test_len_with_cleared_session(chat_history: RedisChatMessageHistory) -> None:
    """Test __len__ after clearing session."""
    chat_history.add_message(HumanMessage(content="Test"))
    assert len(chat_history) == 1

    chat_history.clear()
    assert len(chat_history) == 0


def test_multiple_instances_same_session(redis_url: str) -> None:
    """Test multiple instances accessing the same session."""
    session_id = f"multi_instance_test_{uuid4().hex}"

    history1 = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)
    history2 = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)

    try:
        # Add message with first instance
        history1.add_message(HumanMessage(content="From instance 1"))

        # Read with second instance
        messages = history2.messages
        assert len(messages) == 1
        assert messages[0].content == "From instance 1"

        # Add message with second instance
        history2.add_message(AIMessage(content="From instance 2"))

        # Read with first instance
        messages = history1.messages
        assert len(messages) == 2
        assert messages[0].content == "From instance 1"
        assert messages[1].content == "From instance 2"

    finally:
        history1.clear()


def test_message_with_none_content() -> None:
    """Test that messages with None content are handled properly."""
    # This should raise an error during message creation, not in our code
    with pytest.raises((TypeError, ValueError)):
        HumanMessage(content=None)  # type: ignore


@pytest.mark.xfail(
    strict=True,
    reason=(
        "deliberate: no history.redis_client (a history's clients are redis.asyncio, one per event loop; "
        "history.store.redis_client is the async methods' client)"
    ),
)
def test_redis_connection_recovery(redis_url: str) -> None:
    """Test behavior when Redis connection is temporarily lost."""
    session_id = f"connection_test_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)

    try:
        # Add a message normally
        history.add_message(HumanMessage(content="Before connection issue"))
        assert len(history.messages) == 1

        # Simulate connection issue by closing the connection
        # Note: This is a basic test - real connection recovery would be more complex
        history.redis_client.connection_pool.disconnect()  # pyright: ignore[reportAttributeAccessIssue]  # the xfail: no such attribute here

        # Try to add another message - should work due to connection pooling
        history.add_message(HumanMessage(content="After connection issue"))
        messages = history.messages
        assert len(messages) == 2

    finally:
        history.close()


def test_very_long_key_prefix(redis_url: str) -> None:
    """Test with very long key prefix."""
    long_prefix = "very_long_prefix_" * 10 + ":"  # ~170 characters
    session_id = f"test_{uuid4().hex}"

    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url, key_prefix=long_prefix)

    try:
        history.add_message(HumanMessage(content="Test with long prefix"))
        messages = history.messages
        assert len(messages) == 1
        assert messages[0].content == "Test with long prefix"
    finally:
        history.close()


def test_special_characters_in_key_prefix(redis_url: str) -> None:
    """Test with special characters in key prefix."""
    special_prefix = "test-prefix_with.special@chars:"
    session_id = f"test_{uuid4().hex}"

    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url, key_prefix=special_prefix)

    try:
        history.add_message(HumanMessage(content="Test with special prefix"))
        messages = history.messages
        assert len(messages) == 1
        assert messages[0].content == "Test with special prefix"
    finally:
        history.close()


@pytest.mark.xfail(
    strict=True,
    reason=(
        "ttl=-1 is refused with a ValueError, which the test accepts, but its finally calls close() "
        "(upstream: delete()) on the name the refused constructor never bound (UnboundLocalError); langchain-"
        "redis's own ttl=-1 deletes each message as it is written"
    ),
)
def test_negative_ttl(redis_url: str) -> None:
    """Test behavior with negative TTL."""
    session_id = f"negative_ttl_test_{uuid4().hex}"

    # Negative TTL should either be rejected or treated as no TTL
    try:
        history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url, ttl=-1)

        history.add_message(HumanMessage(content="Negative TTL test"))
        messages = history.messages
        # Should either work (treating -1 as no TTL) or fail gracefully
        assert isinstance(messages, list)

    except (ValueError, TypeError):
        # It's acceptable to reject negative TTL
        pass
    finally:
        history.close()  # pyright: ignore[reportPossiblyUnboundVariable]  # the xfail: unbound here


def test_pagination_in_clear_method(redis_url: str) -> None:
    """Test that the pagination in clear() method works correctly."""
    session_id = f"pagination_clear_test_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)

    try:
        # Add more messages than the page size (50)
        for i in range(75):
            history.add_message(HumanMessage(content=f"Message {i}"))

        assert len(history.messages) == 75

        # Clear should handle pagination correctly
        history.clear()
        assert len(history.messages) == 0

    finally:
        history.close()


def test_json_serialization_edge_cases(chat_history: RedisChatMessageHistory) -> None:
    """Test edge cases in JSON serialization."""
    # Test with content that might cause JSON issues
    problematic_content = """{"nested": "json", "array": [1, 2, 3], "null": null}"""

    chat_history.add_message(HumanMessage(content=problematic_content))

    messages = chat_history.messages
    assert len(messages) == 1
    assert messages[0].content == problematic_content


def test_timestamp_precision(redis_url: str) -> None:
    """Test timestamp precision and uniqueness."""
    session_id = f"timestamp_test_{uuid4().hex}"
    history = RedisChatMessageHistory(session_id=session_id, redis_url=redis_url)

    try:
        # Add messages in very quick succession
        import time

        start_time = time.time()

        for i in range(10):
            history.add_message(HumanMessage(content=f"Timestamp test {i}"))

        end_time = time.time()

        messages = history.messages
        assert len(messages) == 10

        # Verify all messages are in order
        for i, message in enumerate(messages):
            assert message.content == f"Timestamp test {i}"

        # Test took less than a second but all messages should be ordered
        assert end_time - start_time < 1.0

    finally:
        history.close()
