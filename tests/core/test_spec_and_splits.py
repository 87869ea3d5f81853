from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cnnlab.engine.splits import make_splits
from cnnlab.errors import SpecError
from cnnlab.settings import get_settings
from cnnlab.spec.train import TrainSpec, check_against_dataset, train_count, val_count
from cnnlab.spec.validate import validate_spec
from tests.utils.datasets import write_mnist


def _loc(exc: ValidationError) -> str:
    return ".".join(str(p) for p in exc.errors()[0]["loc"])


def test_defaults_match_the_contract() -> None:
    """The contract's defaults; the model's options are left to the architecture (null), and
    cnn's own are the contract's 16, 32 channels without batch norm or dropout."""
    from cnnlab.datasets.catalog import get_meta
    from cnnlab.engine.checkpoints import model_config

    spec = TrainSpec(dataset="mnist")
    doc = spec.model_dump()
    assert {k: doc[k] for k in list(doc)[:9]} == {
        "dataset": "mnist",
        "train_size": None,
        "val_size": 10000,
        "model": {
            "arch": "cnn", "channels": None, "batch_norm": None, "convs": None, "dropout": None,
            "depth": None, "width": None,
        },
        "optimizer": {
            "name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False,
        },
        "batch_size": 1024,
        "epochs": 10,
        "seed": 0,
        "device": "auto",
    }  # fmt: skip
    kwargs = model_config(spec, get_meta("mnist"))["kwargs"]
    assert (kwargs["channels"], kwargs["batch_norm"], kwargs["dropout"]) == ([16, 32], False, 0.0)
    assert kwargs["convs"] is None  # one conv per block
    # The recipe's defaults train as before: no augmentation, a constant rate, no early stop.
    assert not spec.augment.active and spec.schedule.name == "constant"
    assert spec.early_stopping.patience is None and spec.init is None and spec.freeze is None
    assert (spec.label_smoothing, spec.class_weight, spec.precision) == (0.0, None, "fp32")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"dataset": "Image Net"}, "dataset"),  # nor a built-in nor an upload's name
        ({}, "dataset"),
        ({"dataset": "mnist", "optimizer": {"lr": -0.1}}, "optimizer.lr"),
        ({"dataset": "mnist", "optimizer": {"lr": 0.1, "mommentum": 0.9}}, "optimizer.mommentum"),
        ({"dataset": "mnist", "learning_rate": 0.1}, "learning_rate"),
        ({"dataset": "mnist", "model": {"arch": "resnet9000"}}, "model.arch"),
        ({"dataset": "mnist", "model": {"dropout": 1.0}}, "model.dropout"),
        ({"dataset": "mnist", "model": {"channels": []}}, "model.channels"),
        ({"dataset": "mnist", "val_size": 1.5}, "val_size"),
        ({"dataset": "mnist", "epochs": 0}, "epochs"),
        ({"dataset": "mnist", "device": "tpu"}, "device"),
        ({"dataset": "mnist", "optimizer": {"name": "adam", "nesterov": True}}, "optimizer"),
    ],
)
def test_bad_specs_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TrainSpec.model_validate(doc)
    assert _loc(info.value) == field


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"val_size": 60000}, "val_size"),
        ({"val_size": 10000, "train_size": 50001}, "train_size"),
        ({"val_size": 59000, "batch_size": 2000}, "batch_size"),
    ],
)
def test_rules_that_need_the_split_size(doc: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        check_against_dataset(TrainSpec(dataset="mnist", **doc), 60000)
    assert info.value.field == field


def test_val_size_as_fraction() -> None:
    spec = TrainSpec(dataset="mnist", val_size=0.2)
    assert val_count(spec, 1000) == 200 and train_count(spec, 1000) == 800


def test_model_that_cannot_fit_the_images_is_a_spec_error(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=100, n_test=10)
    spec = TrainSpec(dataset="mnist", val_size=10, batch_size=8, model={"channels": [4] * 6})
    with pytest.raises(SpecError, match="shrink 28×28") as info:
        validate_spec(spec, get_settings())
    assert info.value.field == "model"


def test_split_is_deterministic_and_disjoint(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=200, n_test=20)
    spec = TrainSpec(dataset="mnist", val_size=50, train_size=100, batch_size=10, seed=7)
    a, b = make_splits(spec), make_splits(spec)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert len(a.train) == 100 and len(a.val) == 50 and len(a.test) == 20
    other = make_splits(spec.model_copy(update={"seed": 8}))
    assert not torch.equal(a.val.images, other.val.images)


@settings(max_examples=200, deadline=None)
@given(
    doc=st.fixed_dictionaries(
        {"dataset": st.sampled_from(["mnist", "fashion_mnist", "cifar10"])},
        optional={
            "val_size": st.one_of(st.integers(-5, 70000), st.floats(allow_nan=True)),
            "train_size": st.one_of(st.none(), st.integers(-5, 70000)),
            "batch_size": st.integers(-5, 100000),
            "epochs": st.integers(-1, 2000),
            "optimizer": st.fixed_dictionaries(
                {},
                optional={
                    "lr": st.floats(allow_nan=True, allow_infinity=True),
                    "momentum": st.floats(-1, 2),
                    "name": st.text(max_size=6),
                },
            ),
        },
    )
)
def test_spec_validation_only_raises_typed_errors(doc: dict) -> None:
    """Whatever the numbers, validation either accepts a spec that obeys every bound or raises a
    ValidationError / SpecError naming a field — never anything else."""
    try:
        spec = TrainSpec.model_validate(doc)
        check_against_dataset(spec, 60000)
    except ValidationError as exc:
        assert exc.errors()[0]["loc"]
        return
    except SpecError as exc:
        assert exc.field in {"val_size", "train_size", "batch_size"}
        return
    assert 0 < spec.optimizer.lr <= 100 and 1 <= spec.epochs <= 1000
    assert spec.batch_size <= train_count(spec, 60000) and val_count(spec, 60000) < 60000


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"dataset": "mnist", "epochs": True}, "epochs"),
        ({"dataset": "mnist", "epochs": "3"}, "epochs"),
        ({"dataset": "mnist", "val_size": True}, "val_size"),
        ({"dataset": "mnist", "val_size": "half"}, "val_size"),
        ({"dataset": "mnist", "optimizer": {"lr": "0.1"}}, "optimizer.lr"),
        ({"dataset": "mnist", "model": {"channels": [16, "32"]}}, "model.channels.1"),
    ],
)
def test_no_silent_coercion(doc: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TrainSpec.model_validate(doc)
    from cnnlab.spec.train import field_path

    assert field_path(info.value.errors()[0]["loc"]) == field


def test_an_int_is_a_fine_learning_rate() -> None:
    spec = TrainSpec.model_validate({"dataset": "mnist", "optimizer": {"lr": 1}})
    assert spec.optimizer.lr == 1.0
