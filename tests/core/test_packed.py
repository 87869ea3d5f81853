"""Packed trials give each trial the results its own ``fit`` would (cnnlab/engine/packed.py).

Tolerance: a packed trial's per-epoch train_loss, val_loss and val_accuracy are within 1e-5
relative (1e-4 with batch norm, whose statistics are reduced in another order) of its unpacked
run, and its weights within 1e-4 absolute; a pack resumed after a kill is bit-identical to one
never killed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.packed import PackedTrial, can_pack, fit_packed, pack_groups
from cnnlab.engine.predict import Predictor
from cnnlab.engine.training import EpochReport, FitResult, fit
from cnnlab.errors import Diverged
from cnnlab.spec.packing import pack_key
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import patterned_images, write_mnist

COMPARED = ("train_loss", "val_loss", "val_accuracy")
OPTIMIZERS = [
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.02, "momentum": 0.5, "nesterov": True, "weight_decay": 1e-3},
    {"lr": 0.01},
]


def _spec(**overrides: object) -> TrainSpec:
    doc = {
        "dataset": "mnist",
        "val_size": 60,
        "batch_size": 64,
        "epochs": 2,
        "device": "cpu",
        "optimizer": {"lr": 0.05, "momentum": 0.9},
        "model": {"channels": [4, 8], "dropout": 0.25},
    }
    doc.update(overrides)
    return TrainSpec.model_validate(doc)


def _grid(**overrides: object) -> list[TrainSpec]:
    return [_spec(optimizer=o, **overrides) for o in OPTIMIZERS]


def _ok(outcome: FitResult | Exception) -> FitResult:
    assert isinstance(outcome, FitResult), outcome
    return outcome


def _assert_close(packed: FitResult, alone: FitResult, rel: float = 1e-5) -> None:
    assert [m.epoch for m in packed.epochs] == [m.epoch for m in alone.epochs]
    for got, want in zip(packed.epochs, alone.epochs, strict=True):
        for key in COMPARED:
            a, b = getattr(got, key), getattr(want, key)
            assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-7), (got.epoch, key, a, b)
    assert packed.best_epoch == alone.best_epoch
    assert packed.test_accuracy == alone.test_accuracy
    assert packed.evaluated is not None and alone.evaluated is not None
    for mine_set, their_set in zip(
        (packed.evaluated.validation, packed.evaluated.test),
        (alone.evaluated.validation, alone.evaluated.test),
        strict=True,
    ):
        if mine_set is None or their_set is None:  # the test split not evaluated
            assert mine_set is their_set
            continue
        assert mine_set.ref == their_set.ref
        assert torch.equal(mine_set.images, their_set.images)
        assert torch.equal(mine_set.labels, their_set.labels)
    mine, theirs = packed.last_checkpoint, alone.last_checkpoint
    assert mine["optimizer_state"]["param_groups"] == theirs["optimizer_state"]["param_groups"]
    for name, value in theirs["model_state"].items():
        torch.testing.assert_close(mine["model_state"][name], value, rtol=0, atol=1e-4)


def _assert_same(a: FitResult, b: FitResult) -> None:
    assert [m.to_dict() | {"seconds": 0, "images_per_second": 0} for m in a.epochs] == [
        m.to_dict() | {"seconds": 0, "images_per_second": 0} for m in b.epochs
    ]
    for name, value in a.last_checkpoint["model_state"].items():
        assert torch.equal(value, b.last_checkpoint["model_state"][name]), name


@pytest.fixture
def mnist(data_dir: Path) -> Path:
    return write_mnist(data_dir, n_train=300, n_test=60)


def test_what_packs() -> None:
    base = _spec()
    assert can_pack(_grid())
    assert can_pack([base, _spec(epochs=2, optimizer={"lr": 1.0})])
    # With dropout the seed must agree; without, seeds may differ.
    assert not can_pack([base, _spec(seed=1)])
    assert can_pack([_spec(model={"dropout": 0.0}), _spec(seed=1, model={"dropout": 0.0})])
    assert pack_key(_spec(optimizer={"name": "adam", "lr": 0.001})) is None
    assert not can_pack([base, _spec(batch_size=32)])
    assert not can_pack([base, _spec(model={"channels": [4, 4], "dropout": 0.25})])
    assert not can_pack([])
    specs = [base, _spec(optimizer={"name": "adamw"}), _spec(batch_size=32), _spec(seed=0)]
    assert pack_groups(specs) == [[0, 3], [1], [2]]


def test_packed_trials_match_separate_runs(mnist: Path) -> None:
    specs = _grid()
    packed = fit_packed([PackedTrial(s) for s in specs])
    for spec, outcome in zip(specs, packed, strict=True):
        _assert_close(_ok(outcome), fit(spec))


def test_packed_trials_with_different_seeds_match_separate_runs(mnist: Path) -> None:
    specs = [
        _spec(optimizer=o, seed=seed, model={"channels": [4, 8]})
        for seed, o in enumerate(OPTIMIZERS)
    ]
    packed = fit_packed([PackedTrial(s) for s in specs])
    for spec, outcome in zip(specs, packed, strict=True):
        _assert_close(_ok(outcome), fit(spec))


def test_packed_batch_norm_trials_match_separate_runs(mnist: Path) -> None:
    specs = _grid(model={"channels": [4, 8], "batch_norm": True})
    packed = fit_packed([PackedTrial(s) for s in specs])
    for spec, outcome in zip(specs, packed, strict=True):
        _assert_close(_ok(outcome), fit(spec), rel=1e-4)


def test_a_pack_resumed_after_a_kill_matches_one_never_killed(mnist: Path) -> None:
    specs = _grid(epochs=3)
    straight = fit_packed([PackedTrial(s) for s in specs], evaluate_test=False)
    # "Killed" after epoch 1: all that survives is what each trial's on_epoch stored.
    stored: dict[int, bytes] = {}

    def keep(i: int) -> Callable[[EpochReport], bool]:
        def on_epoch(report: EpochReport) -> bool:
            stored[i] = checkpoint.dumps(report.checkpoint)
            return report.metrics.epoch == 1

        return on_epoch

    fit_packed([PackedTrial(s, on_epoch=keep(i)) for i, s in enumerate(specs)])
    resumed = fit_packed(
        [PackedTrial(s, resume=checkpoint.loads(stored[i])) for i, s in enumerate(specs)],
        evaluate_test=False,
    )
    for a, b in zip(straight, resumed, strict=True):
        _assert_same(_ok(a), _ok(b))
    # A packed trial's checkpoint also resumes unpacked.
    alone = fit(specs[0], resume=checkpoint.loads(stored[0]), evaluate_test=False)
    _assert_close(_ok(straight[0]), alone)


def test_trials_leaving_the_pack_do_not_change_the_others(mnist: Path) -> None:
    specs = [
        *_grid(epochs=3),
        _spec(epochs=3, optimizer={"lr": 100.0, "momentum": 0.9, "weight_decay": 1.0}),
    ]
    full = fit_packed([PackedTrial(s) for s in specs[:2]])
    trials = [
        PackedTrial(specs[0]),
        PackedTrial(specs[1]),
        PackedTrial(specs[2], on_epoch=lambda r: r.metrics.epoch == 1),  # pruned after epoch 1
        PackedTrial(specs[2], should_stop=lambda: True),  # cancelled before its first batch
        PackedTrial(specs[3]),  # diverges
    ]
    out = fit_packed(trials)
    _assert_close(_ok(out[0]), _ok(full[0]))
    _assert_close(_ok(out[1]), _ok(full[1]))
    pruned, cancelled = _ok(out[2]), _ok(out[3])
    assert pruned.cancelled and [m.epoch for m in pruned.epochs] == [1]
    assert pruned.test_accuracy is None and pruned.last_checkpoint["epoch"] == 1
    assert cancelled.cancelled and cancelled.epochs == [] and cancelled.best_epoch == 0
    assert isinstance(out[4], Diverged)
    with pytest.raises(Diverged) as alone:
        fit(specs[3])
    assert out[4].details == alone.value.details


def test_packed_checkpoints_load_and_predict(mnist: Path, tmp_path: Path) -> None:
    result = _ok(fit_packed([PackedTrial(s) for s in _grid()])[1])
    path = checkpoint.save(result.best_checkpoint, tmp_path / "best.pt")
    ckpt = checkpoint.load(path)
    assert ckpt["spec"]["optimizer"] == OPTIMIZERS[1] | {"name": "sgd"}
    model = checkpoint.load_model(ckpt)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    images, _ = patterned_images(8, (28, 28), seed=5)
    predictions = Predictor(ckpt).predict_arrays([img.tolist() for img in images])
    assert len(predictions) == 8 and all(0 <= p["label"] < 10 for p in predictions)


RECIPE = {
    "augment": {"crop": 2, "flip": True},
    "schedule": {"name": "cosine", "warmup_epochs": 0.5},
    "label_smoothing": 0.1,
    "early_stopping": {"patience": 1},
}


def test_what_packs_with_the_recipe() -> None:
    plain = _spec(model={"channels": [4, 8]})
    recipe = [_spec(model={"channels": [4, 8]}, seed=s, **RECIPE) for s in (0, 1)]
    assert can_pack(recipe) and not can_pack([plain, recipe[0]])
    # Class weights come from the seed's train split: the seed must agree.
    weighted = {"model": {"channels": [4, 8]}, "class_weight": "balanced"}
    assert not can_pack([_spec(**weighted), _spec(seed=1, **weighted)])
    assert can_pack([_spec(**weighted), _spec(**weighted, optimizer={"lr": 0.01})])
    # A warm start or a frozen feature extractor never packs.
    assert pack_key(_spec(init={"job_id": "j"})) is None
    assert pack_key(_spec(init={"job_id": "j"}, freeze="features", freeze_epochs=1)) is None


def test_packed_trials_with_the_recipe_match_separate_runs(mnist: Path) -> None:
    specs = [
        _spec(optimizer=o, seed=seed, model={"channels": [4, 8]}, epochs=3, **RECIPE)
        for seed, o in enumerate(OPTIMIZERS)
    ]
    packed = fit_packed([PackedTrial(s) for s in specs])
    for spec, outcome in zip(specs, packed, strict=True):
        alone = fit(spec)
        _assert_close(_ok(outcome), alone)
        assert _ok(outcome).stopped_early_at == alone.stopped_early_at
        assert [m.lr for m in _ok(outcome).epochs] == [m.lr for m in alone.epochs]


def test_packed_weighted_dropout_trials_match_separate_runs(mnist: Path) -> None:
    specs = _grid(class_weight="balanced", augment={"crop": 1}, schedule={"name": "onecycle"})
    packed = fit_packed([PackedTrial(s) for s in specs])
    for spec, outcome in zip(specs, packed, strict=True):
        _assert_close(_ok(outcome), fit(spec))
