"""The legacy generation's thread state: what ``serialize()`` writes and how a state is read back.

The legacy ``AgentThread`` re-parses a store's state as ``ChatMessageStoreState``, which
keeps only its ``messages``. The thread reference therefore also travels as a message that
carries no text, only the ``THREAD_REFERENCE_PROPERTY`` additional property; the store's
``add_messages()`` recognises it and adopts the thread instead of storing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._core.codec import message_from_dict
from .._core.compat import framework_message_class
from .._core.errors import StoreStateError
from .._core.keyspace import DEFAULT_KEY_PREFIX, validate_key_prefix, validate_thread_id
from .._core.options import validate_max_messages, validate_ttl

if TYPE_CHECKING:
    from .._core.compat import FrameworkMessage

__all__ = [
    "STATE_TYPE",
    "THREAD_REFERENCE_PROPERTY",
    "is_thread_reference",
    "parse_reference_message",
    "parse_state",
    "reference_message_dict",
]

STATE_TYPE = "redis_chat_message_store_state"
THREAD_REFERENCE_PROPERTY = "agent_framework_redis_store.thread"
STATE_VERSION = 1
# A state of agent-framework-redis's store ("redis_store_state") names its thread the same way;
# its redis_url is never used (connections, and their credentials, come from the caller).
_FOREIGN_STATE_TYPES = {STATE_TYPE, "chat_message_store_state", "redis_store_state"}


def reference_message_dict(reference: Mapping[str, Any]) -> dict[str, Any]:
    # Built through the framework so the dict is in the installed generation's own spelling.
    message = message_from_dict(
        {"role": "system", "contents": [], "additional_properties": {THREAD_REFERENCE_PROPERTY: dict(reference)}}
    )
    return message.to_dict(exclude_none=True)


def is_thread_reference(message: object) -> bool:
    """True for a message shaped exactly like the thread reference ``serialize()`` writes."""
    properties = getattr(message, "additional_properties", None)
    if not isinstance(properties, Mapping) or THREAD_REFERENCE_PROPERTY not in properties:
        return False
    role = getattr(message, "role", None)
    return str(getattr(role, "value", role)) == "system" and not getattr(message, "contents", None)


def parse_reference_message(message: object) -> dict[str, Any]:
    properties: Mapping[str, Any] = getattr(message, "additional_properties", {})
    return _parse_reference(properties[THREAD_REFERENCE_PROPERTY], f"messages[].{THREAD_REFERENCE_PROPERTY}")


def _parse_reference(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise StoreStateError(f"{where} must be a dict, got {type(raw).__name__}")
    version = raw.get("version", STATE_VERSION)
    if version != STATE_VERSION:
        raise StoreStateError(f"{where}['version'] is {version!r}; this version of the store reads {STATE_VERSION}")
    try:
        return {
            "thread_id": validate_thread_id(raw.get("thread_id"), name=f"{where}['thread_id']"),
            "key_prefix": validate_key_prefix(raw.get("key_prefix", DEFAULT_KEY_PREFIX), name=f"{where}['key_prefix']"),
            "max_messages": validate_max_messages(raw.get("max_messages"), name=f"{where}['max_messages']"),
            "ttl": validate_ttl(raw.get("ttl"), name=f"{where}['ttl']"),
        }
    except (TypeError, ValueError) as err:
        raise StoreStateError(str(err)) from err


def parse_state(state: object) -> tuple[dict[str, Any] | None, list[FrameworkMessage]]:
    """The thread reference and any plain messages of a serialized store state."""
    if not isinstance(state, Mapping):
        raise StoreStateError(f"serialized_store_state must be a dict, got {type(state).__name__}")
    state_type = state.get("type", STATE_TYPE)
    if state_type not in _FOREIGN_STATE_TYPES:
        raise StoreStateError(
            f"serialized_store_state['type'] is {state_type!r}; expected {STATE_TYPE!r}, 'chat_message_store_state' "
            "or 'redis_store_state'"
        )
    reference = _parse_reference(state, "serialized_store_state") if "thread_id" in state else None
    raw_messages = state.get("messages") or []
    if not isinstance(raw_messages, list):
        raise StoreStateError(f"serialized_store_state['messages'] must be a list, got {type(raw_messages).__name__}")
    message_class = framework_message_class()
    messages: list[FrameworkMessage] = []
    for index, raw in enumerate(raw_messages):
        if isinstance(raw, message_class):
            message = raw
        elif isinstance(raw, Mapping):
            try:
                message = message_from_dict(dict(raw))
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                raise StoreStateError(f"serialized_store_state['messages'][{index}] is not a message: {err}") from err
        else:
            raise StoreStateError(
                f"serialized_store_state['messages'][{index}] must be a message dict, got {type(raw).__name__}"
            )
        embedded = parse_reference_message(message) if is_thread_reference(message) else None
        if embedded is None:
            messages.append(message)
        elif reference is None:
            reference = embedded
        elif embedded != reference:
            raise StoreStateError(
                f"serialized_store_state['messages'][{index}] names thread {embedded['thread_id']!r} "
                f"but the state names {reference['thread_id']!r}; the state was altered"
            )
    return reference, messages
