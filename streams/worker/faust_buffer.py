"""Fix 9 for faust-streaming 0.15.3 (see faust_fixes.py for the others): table writes hold up fetched messages less.

A write to a Faust table queues its changelog message in the producer's buffer (`ProducerBuffer`), which a
background task sends. While more than 100 wait, every message handed to the streams first waits for the buffer to
ebb (`Conductor.on_message` awaits `wait_until_ebb`, up to 0.1 s for the sender's next turn). The fraud stages write
a card's and a merchant's state per payment, so at 2,000 payments/s the buffer held 300-1,000 messages, the
consumer's hand-over of one fetch stalled 0.3-2 s (up to 15 waits of about 0.1 s each, logged), and the stages got
their events in bursts about a second apart.

`EbbingProducerBuffer` makes a hand-over wait only beyond `EBB_MESSAGES` queued. Durability does not change: Faust
flushes the whole buffer, and waits for the broker's acknowledgements, before it commits any offset
(`Consumer.commit`), and the bound still holds the streams back when the sender falls far behind.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer

EBB_MESSAGES = 8192  # changelog messages queued beyond which a hand-over waits for the buffer (Faust: 100)


class EbbingProducerBuffer(ProducerBuffer):
    """`ProducerBuffer` with the larger bound."""

    max_messages = EBB_MESSAGES


class EbbingProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with that buffer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            return  # the threaded producer queues in its own thread: Faust's buffer is kept
        self.buffer = EbbingProducerBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app
