"""The committed fraud artifact: loads, scores batches with reasons in words (amounts in the reference currency, the
merchant's confirmed-fraud rate), calibrated, with alert-budget thresholds, usable from the batcher."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.batcher import DynamicBatcher
from models.fraud import FraudModel, FraudScore, ScoreRequest, Thresholds, decide, default_artifact_dir
from models.fraud_features import FEATURE_NAMES, INDEX
from models.fraud_reasons import TIMES_SIGN as X
from models.fraud_reasons import Wording, reasons_for
from streams.core.errors import ModelArtifactError


@pytest.fixture(scope="module")
def model() -> FraudModel:
    return FraudModel.load(device="cpu")


def row(**values: float) -> np.ndarray:
    """A typical legitimate transaction (the model's reference) with some features changed."""
    base = FraudModel.load(device="cpu").reference.copy()
    for name, value in values.items():
        base[INDEX[name]] = value
    return base


def takeover() -> np.ndarray:
    """Large online purchase on a new device in a new category at a new merchant."""
    return row(
        amount=3200.0, amount_z=7.0, amount_ratio=80.0, merchant_new=1, mcc_new=1, device_new=1, devices_known=1,
        channel_online=1, channel_changed=1, distance_km=0, speed_kmh=0, location_gap_min=0,
    )  # fmt: skip


def test_artifact_is_small_and_describes_itself() -> None:
    folder = default_artifact_dir()
    assert sum(f.stat().st_size for f in folder.iterdir()) < 1_000_000
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["features"] == FEATURE_NAMES and meta["version"] and meta["training"]["seed"] is not None
    holdout = meta["holdout_metrics"]
    assert holdout["model"]["pr_auc"] > holdout["logistic_regression"]["pr_auc"] > holdout["amount_rule"]["pr_auc"]
    assert 0 < meta["thresholds"]["review"] <= meta["thresholds"]["block"] < 1
    assert (meta["label_delay_days"], meta["reference_currency"]) == (7, "EUR")


def test_score_shapes_and_ranges(model: FraudModel) -> None:
    X = np.vstack([row(), takeover(), row(amount=1.0), row(count_1h=9), row(night=1, local_hour=3.2)])
    probabilities, reasons = model.score(X)
    assert probabilities.shape == (5,) and len(reasons) == 5
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert all(len(r) <= 3 and all(isinstance(t, str) and t for t in r) for r in reasons)
    assert model.score_batch([]) == []


def test_typical_transaction_is_approved_and_takeover_is_blocked(model: FraudModel) -> None:
    (typical, bad), reasons = model.score(np.vstack([row(), takeover()]))
    assert typical < 0.05 < 0.9 < bad
    words = " | ".join(reasons[1])
    assert f"80{X} the card's usual" in words or "new device" in words or "merchant" in words


def test_probability_grows_with_the_amount_above_usual(model: FraudModel) -> None:
    ratios = [1.0, 2.0, 5.0, 20.0, 80.0]
    X = np.vstack([row(amount=38 * r, amount_ratio=r, amount_z=math.log(r) / 0.6, amount_z_category=math.log(r) / 0.6,
                       mcc_new=1) for r in ratios])
    probabilities = model.probabilities(X)
    assert probabilities[0] < model.thresholds.review < 0.5 < probabilities[-1]
    assert np.all(np.diff(probabilities) > 0)


def test_probability_grows_with_the_merchants_confirmed_fraud_rate(model: FraudModel) -> None:
    rates = [0.0, 0.1, 0.3, 0.6, 0.9]
    X = np.vstack([row(merchant_count_7d=20, merchant_count_30d=60, merchant_fraud_rate_7d=r,
                       merchant_fraud_rate_30d=r / 2, merchant_frauds_30d=round(30 * r)) for r in rates])
    probabilities = model.probabilities(X)
    assert probabilities[0] < model.thresholds.review < probabilities[-1]
    assert np.all(np.diff(probabilities) > 0)
    (score,) = model.score_batch([ScoreRequest(X[-1])])
    assert any("merchant's confirmed fraud" in reason for reason in score.reasons)


def test_calibration_is_monotone_in_the_logit(model: FraudModel) -> None:
    logits = np.linspace(-20, 20, 101)
    p = model.calibrate(logits)
    assert np.all(np.diff(p) >= 0) and 0 <= p[0] < 0.01 and 0.99 < p[-1] <= 1


def test_attributions_add_up_to_the_logit_difference(model: FraudModel) -> None:
    X = np.vstack([takeover(), row(amount=1.0, device_new=1, channel_online=1)])
    logits, attributions = model.attributions(X)
    reference_logit = model.logits(model.reference[None, :])[0]
    np.testing.assert_allclose(attributions.sum(1), logits - reference_logit, rtol=0.15, atol=0.5)


def test_score_batch_works_inside_inference_mode(model: FraudModel) -> None:
    with torch.inference_mode():
        scores = model.score_batch([ScoreRequest(takeover()), ScoreRequest(row())])
    assert [type(s) for s in scores] == [FraudScore, FraudScore]
    assert scores[0].probability > scores[1].probability and scores[0].model == model.name
    assert len(scores[0].reasons) == len(scores[0].reason_codes) <= 3


def test_only_rows_at_or_above_explain_from_are_explained_and_alike(model: FraudModel) -> None:
    requests = [ScoreRequest(row()), ScoreRequest(takeover()), ScoreRequest(row(amount=2.0))]
    everything = model.score_batch(requests)
    cut = (everything[0].probability + everything[1].probability) / 2
    assert everything[0].probability < cut <= everything[1].probability and everything[1].reasons
    some = model.score_batch(requests, explain_from=cut)
    assert [s.probability for s in some] == [s.probability for s in everything]
    for full, partial in zip(everything, some, strict=True):
        explained = full.probability >= cut
        assert (partial.reasons, partial.reason_codes) == ((full.reasons, full.reason_codes) if explained else ([], []))


async def test_score_batch_serves_the_dynamic_batcher(model: FraudModel) -> None:
    batcher: DynamicBatcher[ScoreRequest, FraudScore] = DynamicBatcher(
        model.score_batch, name="fraud-test", max_batch_size=8, max_wait_ms=5
    )
    await batcher.start()
    try:
        scores = await batcher.submit([ScoreRequest(row()), ScoreRequest(takeover()), ScoreRequest(row())])
    finally:
        await batcher.stop()
    assert [s.probability > 0.5 for s in scores] == [False, True, False]


def test_decisions_follow_thresholds(model: FraudModel) -> None:
    t = model.thresholds
    assert [t.decide(p) for p in (t.review / 2, t.review, (t.review + t.block) / 2, t.block, 1.0)] == [
        "approve", "review", "review", "block", "block"]
    assert decide(0.3, 0.2, 0.6) == Thresholds(0.2, 0.6).decide(0.3) == "review"


def test_artifact_for_other_features_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "fraud"
    shutil.copytree(default_artifact_dir(), target)
    meta = json.loads((target / "meta.json").read_text())
    (target / "meta.json").write_text(json.dumps(meta | {"features": FEATURE_NAMES[:-1]}))
    with pytest.raises(ModelArtifactError, match="other features"):
        FraudModel.load(target, device="cpu")
    with pytest.raises(ModelArtifactError, match="train fraud"):
        FraudModel.load(tmp_path / "missing", device="cpu")


def only(group_features: dict[str, float]) -> np.ndarray:
    """Attributions that put weight on the named features only."""
    a = np.zeros(len(FEATURE_NAMES))
    for name, value in group_features.items():
        a[INDEX[name]] = value
    return a


def values(**changes: float) -> np.ndarray:
    raw = np.zeros(len(FEATURE_NAMES))
    raw[INDEX["merchant_count_30d"]] = 50
    raw[INDEX["amount"]], raw[INDEX["amount_ratio"]], raw[INDEX["history_count"]] = 40.0, 1.0, 12
    for name, value in changes.items():
        raw[INDEX[name]] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "attributions", "expected"),
    [
        (
            values(amount=350.0, amount_ratio=14.0),
            only({"amount_ratio": 2.0}),
            f"amount 350.00 EUR, 14{X} the card's usual (25.00 EUR)",
        ),
        (
            values(amount=90.0, amount_ratio=3.46),
            only({"amount_z": 1.0}),
            f"amount 90.00 EUR, 3.5{X} the card's usual (26.01 EUR)",
        ),
        (
            values(distance_km=1240.0, location_gap_min=20.0, speed_kmh=3720.0),
            only({"speed_kmh": 1.0}),
            "1,240 km from previous transaction 20 min earlier (3,720 km/h)",
        ),
        (
            values(count_1h=5, sum_1h=1020.0),
            only({"count_1h": 1.0}),
            "5 earlier transactions in the last hour (1,020.00 EUR in total)",
        ),
        (values(merchant_new=1), only({"merchant_new": 1.0}), "first purchase at this merchant"),
        (values(device_new=1), only({"device_new": 1.0}), "new device"),
        (values(device_new=1, devices_known=2), only({"device_new": 1.0}), "new device (the card used 2 others)"),
        (values(local_hour=3.2, night=1), only({"night": 1.0}), "03:12 local night-time"),
        (values(seconds_since_prev=4.0), only({"seconds_since_prev": 1.0}), "previous transaction 4 s earlier"),
        (values(amount=0.5), only({"amount": 1.0}),
         "amount 0.50 EUR, tiny for any card (a typical purchase is 40.00 EUR)"),
        (values(merchant_count_7d=40, merchant_fraud_rate_7d=0.3), only({"merchant_fraud_rate_7d": 1.0}),
         "merchant's confirmed fraud: 12 of its 40 payments in the 7 days ending 7 days ago (30%)"),
        (values(card_known_fraud=1), only({"card_known_fraud": 1.0}), "a fraud on this card was confirmed earlier"),
        (values(country_new=1), only({"country_new": 1.0}), "first transaction in this country"),
    ],
)
def test_reason_wording(raw: np.ndarray, attributions: np.ndarray, expected: str) -> None:
    assert [text for _, text in reasons_for(raw, attributions, Wording(typical=40.0))] == [expected]


def test_an_amount_paid_in_another_currency_is_shown_beside_the_converted_one() -> None:
    raw = values(amount=0.54, amount_ratio=0.02)
    (_, text), = reasons_for(raw, only({"amount": 1.0}), Wording(typical=40.0, paid="795.29 KRW"))
    assert text == "amount 0.54 EUR (795.29 KRW), far below the card's usual 27.00 EUR"


def test_reasons_are_ordered_positive_and_at_most_three() -> None:
    raw = values(merchant_new=1, country_new=1, device_new=1, mcc_new=1, amount=400.0, amount_ratio=10.0)
    attributions = only({"merchant_new": 0.5, "country_new": 2.0, "device_new": 1.0, "mcc_new": 0.2, "amount": -3.0})
    assert [code for code, _ in reasons_for(raw, attributions)] == ["country", "device", "merchant"]
    assert reasons_for(raw, -np.abs(attributions)) == []
