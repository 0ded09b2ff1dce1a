"""The committed artifact loads offline on the real encoder, reads made-up headlines the way a trader would, and
reproduces the validation figures its meta.json and the docs report."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from models.encoder import MAX_LENGTH, get_encoder
from models.sentiment import LABELS, META_FILE, Scorer, SentimentModel, default_artifact_dir
from models.sentiment_data import read_labelled_csv, sha256_of
from models.sentiment_eval import evaluate
from streams.cli.sentiment import register

ROOT = Path(__file__).resolve().parents[2]
VALID = ROOT.parent / "shared" / "data" / "sentiment" / "tfns_valid.csv"  # where the project's README puts the data

BULLISH = [
    "Acme Corp shares soar after record quarterly profit and raised full-year guidance",
    "Zentra beats earnings estimates, stock jumps 12% in early trading",
]
BEARISH = [
    "Acme Corp stock plunges after it misses estimates and cuts its outlook",
    "Zentra shares tumble as regulators open fraud probe",
]


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return SentimentModel.load(device="cpu")


def test_encoder_embeddings_are_normalised() -> None:
    vectors = get_encoder("cpu").encode(["Markets open higher", "A quiet day"])
    assert vectors.shape == (2, 384)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(2))


UNEVEN = [f"{headline} ({n})" * (n % 4 + 1) for n, headline in enumerate(BEARISH * 20)]  # up to 4x: truncated


@pytest.mark.parametrize("texts", [["Up"], BULLISH + BEARISH, UNEVEN], ids=["one short", "four", "forty uneven"])
def test_the_traced_scorer_gives_the_eager_results_for_any_batch_shape(model: SentimentModel, texts: list[str]) -> None:
    batch = model.encoder.tokenize(texts)
    eager = Scorer(model.encoder.model, model.head, model.frozen_layers, model.temperature)
    with torch.inference_mode():
        torch.testing.assert_close(model.scorer(batch.input_ids, batch.attention_mask),
                                   eager(batch.input_ids, batch.attention_mask))


def test_the_scorer_is_traced_for_inference_only(model: SentimentModel) -> None:
    # parameters that require grad made the trace of six fine-tuned layers about 10% slower (docs/performance.md)
    assert not any(p.requires_grad for p in model.head.parameters())


def test_artifact_predicts_the_right_sign(model: SentimentModel) -> None:
    results = model.predict(BULLISH + BEARISH)
    assert [r.label for r in results] == ["bullish"] * 2 + ["bearish"] * 2
    assert all(r.score > 0.5 for r in results[:2]) and all(r.score < -0.5 for r in results[2:])
    assert all(sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-4) for r in results)
    assert {(r.model, r.version) for r in results} == {(model.name, model.version)}


def test_int8_path_agrees_on_the_sign(model: SentimentModel) -> None:
    int8 = SentimentModel.load(device="cpu", quantize=True)
    assert int8.version_tag.endswith("+int8")
    assert [r.label for r in int8.predict(BULLISH + BEARISH)] == ["bullish"] * 2 + ["bearish"] * 2


def test_eval_json_prints_exactly_the_metrics(tmp_path: Path, model: SentimentModel) -> None:
    import typer

    app = typer.Typer()
    register(app)
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",1\n' for t in BULLISH) + "".join(f'"{t}",0\n' for t in BEARISH))
    result = CliRunner().invoke(app, ["eval", "sentiment", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"accuracy", "macro_f1", "weighted_f1", "per_class", "confusion", "n", "calibration"}
    assert metrics["n"] == 4 and metrics["accuracy"] == 1.0 and metrics["weighted_f1"] == 1.0
    assert metrics["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 0]]
    assert set(metrics["per_class"]) == set(LABELS)
    assert metrics["per_class"]["bearish"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert metrics["per_class"]["neutral"]["support"] == 0
    calibration = metrics["calibration"]
    assert calibration["temperature"] == model.temperature and sum(b["n"] for b in calibration["reliability"]) == 4
    assert calibration["negative"]["threshold"] == model.negative_threshold
    assert {"ece", "nll", "brier"} <= set(calibration["before"])


def test_the_artifact_is_the_shipped_architecture_calibrated_and_small() -> None:
    artifact = default_artifact_dir()
    meta = json.loads((artifact / META_FILE).read_text())
    # the MiniLM's six layers over the shared encoder's embeddings: the v1 student's compute per headline and int8 path
    assert (meta["frozen_layers"], meta["trained_layers"]) == (0, 6)
    assert sum(f.stat().st_size for f in artifact.iterdir()) < 30e6
    calibration = meta["calibration"]
    assert 0.05 <= calibration["temperature"] <= 20 and 0.05 <= calibration["negative_threshold"] <= 0.95
    assert calibration["dev_after"]["nll"] <= calibration["dev_before"]["nll"]  # fitted to lower the dev NLL
    assert meta["training"]["data_file"] == "tfns_train.csv" and meta["recipe"]


@pytest.mark.skipif(not VALID.is_file(), reason="the labelled validation file is not beside the repository")
def test_the_artifact_reproduces_its_reported_validation_figures_and_the_docs_quote_them(model: SentimentModel) -> None:
    reported = model.meta["eval"]
    assert reported["data_sha256"] == sha256_of(VALID)
    metrics = evaluate(model, read_labelled_csv(VALID))
    for key in ("accuracy", "macro_f1", "weighted_f1"):
        assert metrics[key] == pytest.approx(reported["fp32"][key], abs=0.002), key
    for name in LABELS:
        assert metrics["per_class"][name]["f1"] == pytest.approx(reported["fp32"]["per_class"][name]["f1"], abs=0.003)
    assert metrics["calibration"]["ece"] == pytest.approx(reported["fp32"]["calibration"]["ece"], abs=0.003)
    docs = (ROOT / "docs" / "models.md").read_text()
    for key in ("accuracy", "macro_f1", "weighted_f1"):
        assert f"{reported['fp32'][key]:.4f}" in docs, f"docs/models.md does not quote the {key} in meta.json"


def test_tokenize_pads_and_truncates_as_the_transformers_tokenizer_does_from_many_threads_at_once() -> None:
    encoder = get_encoder("cpu")
    batches = [UNEVEN, ["Up"], ["", "Émile's café: 株式 $ACME ↑ 12%", "word " * 200], BULLISH + BEARISH] * 8
    with ThreadPoolExecutor(4) as pool:
        ours = list(pool.map(encoder.tokenize, batches))
    for texts, batch in zip(batches, ours, strict=True):
        expected = encoder.tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        assert torch.equal(batch.input_ids, expected["input_ids"])
        assert torch.equal(batch.attention_mask, expected["attention_mask"])
    assert ours[2].input_ids.shape == (3, MAX_LENGTH)  # the 200-word text is cut at MAX_LENGTH tokens
