"""Fan-out of committed events between nodes: the :class:`Broker` interface and its
implementations: :class:`MemoryBroker` (one process) and ``gateway.broker.redis.RedisBroker``
(several nodes; imported from its module)."""

from .base import (
    DEFAULT_FEED_QUEUE,
    Broker,
    BrokerClosed,
    BrokerError,
    BrokerMessage,
    BrokerUnavailable,
    Delivery,
    Feed,
    Gap,
    StreamEntry,
    shard_of,
    to_messages,
)
from .memory import MemoryBroker

__all__ = [
    "DEFAULT_FEED_QUEUE",
    "Broker",
    "BrokerClosed",
    "BrokerError",
    "BrokerMessage",
    "BrokerUnavailable",
    "Delivery",
    "Feed",
    "Gap",
    "MemoryBroker",
    "StreamEntry",
    "shard_of",
    "to_messages",
]
