"""The teacher's and the student's training pieces: the loss, the distillation targets, the layer-wise learning rates,
the teacher-split check and the generated headlines, with tiny random models (no pre-trained weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from models.sentiment_data import sha256_of
from models.sentiment_fit import class_weights, one_hot, soft_cross_entropy, stratified_split
from models.sentiment_teacher import FROZEN, TeacherConfig, _optimizer, indices_digest, new_member
from models.sentiment_train import TrainConfig, check_teacher, soften, targets_for
from streams.core.errors import ConfigurationError
from streams.tools.generated_data import news_headlines


def test_soft_cross_entropy_on_one_hot_targets_is_the_weighted_cross_entropy() -> None:
    logits, labels = torch.randn(16, 3), torch.randint(0, 3, (16,))
    weights = class_weights(one_hot(labels.tolist()))
    expected = nn.CrossEntropyLoss(weight=weights)(logits, labels)
    torch.testing.assert_close(soft_cross_entropy(logits, one_hot(labels.tolist()), weights), expected)
    torch.testing.assert_close(soft_cross_entropy(logits, one_hot(labels.tolist()), None),
                               nn.functional.cross_entropy(logits, labels))


def test_class_weights_favour_the_rare_class_and_average_one() -> None:
    weights = class_weights(one_hot([0] * 10 + [1] * 40 + [2] * 160))
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2]
    assert (weights[0] / weights[2]).item() == pytest.approx(4.0)  # sqrt(160 / 10)


def test_distillation_targets_mix_the_label_and_the_teacher_and_never_show_the_dev_fold_to_it() -> None:
    texts, labels = ["a", "b", "c", "d"], [0, 1, 2, 2]
    train_idx, unlabelled = [0, 1, 3], ["u1", "u2"]
    asked: list[list[str]] = []

    def teacher(batch: list[str]) -> torch.Tensor:
        asked.append(batch)
        return torch.tensor([[0.2, 0.2, 0.6]] * len(batch))

    targets = targets_for(labels, train_idx, unlabelled, texts + unlabelled, TrainConfig(hard_weight=0.5), teacher)
    assert asked == [["a", "b", "d", "u1", "u2"]]  # "c" is the dev fold
    torch.testing.assert_close(targets[0], torch.tensor([0.6, 0.1, 0.3]))
    torch.testing.assert_close(targets[2], torch.tensor([0.0, 0.0, 1.0]))  # dev: its label, never trained on
    torch.testing.assert_close(targets[4:], torch.tensor([[0.2, 0.2, 0.6]] * 2))
    torch.testing.assert_close(targets.sum(dim=-1), torch.ones(6))
    plain = targets_for(labels, train_idx, [], texts, TrainConfig(), None)
    torch.testing.assert_close(plain, one_hot(labels))


def test_a_soft_temperature_flattens_the_teachers_targets_and_keeps_its_ranking() -> None:
    teacher = torch.tensor([[0.9, 0.09, 0.01], [0.2, 0.5, 0.3]])
    assert soften(teacher, 1.0) is teacher
    flat = soften(teacher, 2.0)
    torch.testing.assert_close(flat, teacher.sqrt() / teacher.sqrt().sum(dim=-1, keepdim=True))  # T = 2: sqrt
    assert flat[0, 0] < 0.9 and flat[0, 2] > 0.01
    assert torch.equal(flat.argsort(dim=-1), teacher.argsort(dim=-1))
    targets = targets_for([0, 1], [0, 1], ["u"], ["a", "b", "u"], TrainConfig(soft_temperature=2.0),
                          lambda batch: teacher[[0, 1, 1]][: len(batch)])
    torch.testing.assert_close(targets[2], flat[1])
    torch.testing.assert_close(targets[0], 0.5 * torch.tensor([1.0, 0.0, 0.0]) + 0.5 * flat[0])


def tiny_bert() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16)
    return BertModel(config)


def test_teacher_members_learn_faster_at_the_top_and_keep_the_word_embeddings() -> None:
    member = new_member(tiny_bert(), dropout=0.1)
    config = TeacherConfig(lr=1e-4, head_lr=1e-3)
    optimizer = _optimizer(member, config, decay=0.5)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    layers = member.bert.encoder.layer
    assert lr_of[id(member.classifier.weight)] == 1e-3
    assert [lr_of[id(layer.output.dense.weight)] for layer in layers] == pytest.approx([2.5e-5, 5e-5, 1e-4])
    assert lr_of[id(member.bert.embeddings.position_embeddings.weight)] == pytest.approx(1.25e-5)
    frozen = member.bert.get_parameter(FROZEN[0].removeprefix("bert."))
    assert id(frozen) not in lr_of and not frozen.requires_grad
    logits = member(torch.tensor([[1, 5, 7, 0]]), torch.tensor([[1, 1, 1, 0]]))
    assert logits.shape == (1, 3)


def test_the_student_refuses_a_teacher_that_saw_its_dev_fold(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(60)))
    config = TrainConfig(split_seed=13, dev_fraction=0.2)
    dev = stratified_split([i % 3 for i in range(60)], 0.2, 13)[1]
    meta = {"data_sha256": sha256_of(data), "dev_indices_sha256": indices_digest(dev)}
    check_teacher(meta, data, config)
    with pytest.raises(ConfigurationError, match="another file or split"):
        check_teacher(meta, data, TrainConfig(split_seed=14, dev_fraction=0.2))
    with pytest.raises(ConfigurationError):
        check_teacher({**meta, "data_sha256": "0" * 64}, data, config)


def test_generated_headlines_are_distinct_and_seeded() -> None:
    headlines = news_headlines(seed=3, count=500)
    assert len(headlines) == len(set(headlines)) == 500
    assert headlines == news_headlines(seed=3, count=500)
    assert headlines[:50] != news_headlines(seed=4, count=50)


def test_resume_keeps_a_member_file_scores_it_and_records_that_it_was_not_trained_here(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from models.encoder import get_encoder
    from models.sentiment_data import read_labelled_csv
    from models.sentiment_teacher import Teacher, _trained_state, train_teacher

    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"headline number {i},{i % 3}\n" for i in range(30)))
    out = tmp_path / "teacher"
    out.mkdir()
    member = new_member(get_encoder("cpu").model, dropout=0.1)
    save_file(_trained_state(member), str(out / "member-0.safetensors"))
    before = (out / "member-0.safetensors").read_bytes()
    config = TeacherConfig(members=1, dev_fraction=0.2, epochs=1)
    meta = train_teacher(data, read_labelled_csv(data), config, out, resume=True)
    assert (out / "member-0.safetensors").read_bytes() == before  # loaded, not trained again
    record = meta["members"][0]
    assert record["resumed_from"] == "member-0.safetensors" and record["train_seconds"] is None
    assert record["dev_metrics"]["n"] == 6 and meta["dev_metrics"] == record["dev_metrics"]
    assert Teacher(out).probabilities(["headline number 1"]).shape == (1, 3)


def test_cross_fitted_members_each_label_the_fold_they_did_not_see(tmp_path: Path) -> None:
    from models.sentiment_data import read_labelled_csv
    from models.sentiment_fit import stratified_folds, stratified_split
    from models.sentiment_teacher import Teacher, text_key, train_teacher

    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"headline number {i},{i % 3}\n" for i in range(30)))
    rows = read_labelled_csv(data)
    config = TeacherConfig(members=2, folds=2, dev_fraction=0.2, epochs=1)
    meta = train_teacher(data, rows, config, tmp_path / "teacher")
    train_idx, dev_idx = stratified_split(rows.labels, config.dev_fraction, config.split_seed)
    folds = stratified_folds(rows.labels, train_idx, 2, config.seed)
    assert sorted(folds[0] + folds[1]) == train_idx and not set(folds[0]) & set(folds[1])
    held = [set(m["held_out_texts"]) for m in meta["members"]]
    assert held == [{text_key(rows.texts[i]) for i in fold} for fold in folds]

    teacher = Teacher(tmp_path / "teacher")
    first, second, unseen = rows.texts[folds[0][0]], rows.texts[folds[1][0]], rows.texts[dev_idx[0]]
    each = teacher.member_probabilities([first, second, unseen])
    mixed = teacher.probabilities([first, second, unseen])
    assert torch.allclose(mixed[0], each[0][0]) and torch.allclose(mixed[1], each[1][1])
    assert torch.allclose(mixed[2], (each[0][2] + each[1][2]) / 2)
    assert not torch.allclose(each[0][2], each[1][2])  # the members differ, so the checks above can fail


def test_stratified_folds_keep_each_label_share() -> None:
    from models.sentiment_fit import stratified_folds

    labels = [0] * 40 + [1] * 20 + [2] * 10
    parts = stratified_folds(labels, list(range(70)), 2, seed=1)
    assert [sorted(labels[i] for i in part).count(2) for part in parts] == [5, 5]
    assert [len(part) for part in parts] == [35, 35]
