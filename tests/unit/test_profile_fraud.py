"""The profile summary: each sampled stack charged to the deepest step it names, per thread, in ms per event."""

from streams.tools.profile_fraud import OWN_WORK, step_of, summarise, thread_of

RAW = [
    "thread (1): MainThread;main (streams/cli/main.py:10);CardStage.prepare (streams/worker/fraud_cards.py:70);"
    "load (streams/worker/keyed_state.py:50) 40",
    "thread (1): MainThread;main (streams/cli/main.py:10);Pipeline.process (streams/worker/pipeline.py:100);"
    "Decoder.decode (streams/core/decoding.py:80);loads (json/__init__.py:346) 20",
    "thread (1): MainThread;main (streams/cli/main.py:10);_run_once (asyncio/base_events.py:1922) 30",
    "thread (2): batcher-fraud_0;run (streams/worker/batcher.py:90);forward (models/fraud.py:60) 10",
    "thread (3): batcher-fraud_1;run (streams/worker/batcher.py:90);forward (models/fraud.py:60) 10",
    "not a sample line",
]


def test_the_deepest_named_frame_names_the_step():
    assert step_of(["Pipeline.process (streams/worker/pipeline.py:1)",
                    "FraudPipeline.outputs (streams/worker/fraud.py:1)",
                    "Runtime.publish (streams/worker/runtime.py:1)"]) == "publish (alerts, stage messages, changelogs)"
    assert step_of(["FraudPipeline.prepare (streams/worker/fraud.py:1)",
                    "load (streams/worker/keyed_state.py:1)"]) == "merchant features and state"
    assert step_of(["_run_once (asyncio/base_events.py:1)"]) == OWN_WORK


def test_threads_of_a_pool_count_together():
    assert thread_of("thread (2): batcher-fraud_0") == thread_of("thread (3): batcher-fraud_1") == "batcher-fraud"
    assert thread_of("thread (1): MainThread") == "event loop"


def test_milliseconds_per_event_from_samples():
    summary = summarise(RAW, events=10)  # 5 ms a sample
    assert summary["cpu_ms_per_event"] == 55.0
    assert summary["threads_ms_per_event"] == {"event loop": 45.0, "batcher-fraud": 10.0}
    assert summary["steps_ms_per_event"] == {
        "event loop: card features and state": 20.0, f"event loop: {OWN_WORK}": 15.0,
        "event loop: decode and validate": 10.0, "batcher-fraud: model and reasons": 10.0}
