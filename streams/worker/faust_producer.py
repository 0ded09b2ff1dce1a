"""Fixes 9 and 11 for faust-streaming 0.15.3 (see faust_fixes.py for the others): the producer side.

9. **Table writes hold up fetched messages.** A write to a Faust table queues its changelog message in the producer's
   buffer (`ProducerBuffer`), which a background task sends. While more than 100 wait, every message handed to the
   streams first waits for the buffer to ebb (`Conductor.on_message` awaits `wait_until_ebb`, up to 0.1 s for the
   sender's next turn). The fraud stages write a card's and a merchant's state per payment, so at 2,000 payments/s
   the buffer held 300-1,000 messages, the consumer's hand-over of one fetch stalled 0.3-2 s (up to 15 waits of
   about 0.1 s each, logged), and the stages got their events in bursts about a second apart. `EbbingProducerBuffer`
   makes a hand-over wait only beyond `EBB_MESSAGES` queued, and then only until the buffer is back under the bound
   (Faust's waits for as many sends as the bound, here almost the whole buffer). Durability does not change: Faust
   flushes the whole buffer, and waits for the broker's acknowledgements, before it commits any offset
   (`Consumer.commit`), and the bound still holds the streams back when the sender falls far behind.

11. **Every message Faust sends waits three turns of the event loop.** `Topic.publish_message` (every send: table
    changelogs, the next stage's topic, alerts) first awaits `App.maybe_start_producer`, which Faust guards against
    concurrent starts with mode's `stampede`: a new task per call, awaited through `asyncio.shield`, even once the
    producer runs. The buffer's sender sends one message at a time, so on a busy loop it sent about 800 changelog
    messages a second while the fraud stages wrote 2,400 (1,200 payments/s, logged): the buffer grew to the bound
    every 5-6 s and the streams stalled about a second while it drained. `ReadyProducerApp` returns the producer at
    once after its first start has finished; until then Faust's guarded start runs as before.

Besides the fixes, `CachingPartitioner` is the app's `producer_partitioner`: aiokafka's default partitioner
(murmur2 of the key, as the Java client and the project's confluent-kafka producers with `murmur2_random`) with each
key's hash remembered. aiokafka's murmur2 is pure Python (11 µs a call here, 0.8 µs remembered) and ran for every
message a worker sent: about 2.5 a payment in the fraud stages (the stage message and the table changelogs, counted
by cProfile), some 3% of a draining worker's CPU.
"""

from __future__ import annotations

import functools
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from mode.utils.futures import StampedeWrapper

EBB_MESSAGES = 8192  # changelog messages queued beyond which a hand-over waits for the buffer (Faust: 100)
HASHES_REMEMBERED = 1 << 17  # keys whose murmur2 the partitioner keeps (cards, merchants, users: about 23 MB)


class CachingPartitioner:
    """aiokafka's `DefaultPartitioner` with the murmur2 of the last `HASHES_REMEMBERED` keys remembered (the same
    partition for every key; a message without a key goes to a random partition, as there)."""

    def __init__(self, remembered: int = HASHES_REMEMBERED) -> None:
        self._hash = functools.lru_cache(maxsize=remembered)(murmur2)
        self._random = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self._random(key, all_partitions, available)
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


class EbbingProducerBuffer(ProducerBuffer):
    """`ProducerBuffer` with the larger bound (fix 9)."""

    max_messages = EBB_MESSAGES

    async def wait_until_ebb(self) -> None:
        """Wait while more than the bound are queued, until the excess is sent (or no send came for 0.1 s)."""
        excess = self.size - self.max_messages
        if excess > 0:
            await self.flush_atmost(excess)


class EbbingProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with that buffer (fix 9)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            return  # the threaded producer queues in its own thread: Faust's buffer is kept
        self.buffer = EbbingProducerBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app


class ReadyProducerApp(faust.App):
    """`faust.App` whose `maybe_start_producer` costs nothing once the producer has started (fix 11)."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        # Faust's own method, guarded against concurrent starts (wrapped here: reading it through the instance
        # would cache the guard in the instance's namespace, over the override below)
        self._start_producer_once = StampedeWrapper(faust.App.maybe_start_producer.__wrapped__, self)
        self._producer_ready = False

    async def maybe_start_producer(self) -> Any:
        if self._producer_ready:
            return self.producer
        producer = await self._start_producer_once()
        self._producer_ready = not self.in_transaction  # exactly-once sends go through the consumer's transactions
        return producer
