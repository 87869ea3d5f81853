"""The training recipe (cnnlab/engine/{augment,schedule,loop,warm_start}.py): augmentation,
learning-rate schedules, class weights, early stopping, warm starts and freezing."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.datasets.catalog import get_meta
from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.augment import augment, generator
from cnnlab.engine.loop import Normalize, Recipe, epoch_seed, patience_ran_out
from cnnlab.engine.schedule import lr_factor
from cnnlab.engine.training import EpochReport, accuracy_on_test, fit, start_model
from cnnlab.errors import SpecError
from cnnlab.spec.recipe import AugmentSpec, EarlyStoppingSpec, ScheduleSpec
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import write_cifar10, write_mnist

CPU = torch.device("cpu")


def _spec(**overrides: object) -> TrainSpec:
    doc: dict[str, object] = {
        "dataset": "mnist",
        "val_size": 60,
        "batch_size": 64,
        "epochs": 2,
        "device": "cpu",
        "model": {"channels": [4, 8]},
    }
    doc.update(overrides)
    return TrainSpec.model_validate(doc)


@pytest.fixture
def mnist(data_dir: Path) -> Path:
    return write_mnist(data_dir, n_train=300, n_test=60)


# -- augmentation ------------------------------------------------------------------------------
FULL = AugmentSpec(crop=4, flip=True, translate=2, rotate=10.0, jitter=0.3)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_augmentation_keeps_shapes_and_repeats_for_the_same_seed_and_epoch(
    shape: tuple[int, int, int],
) -> None:
    x = torch.randint(0, 256, (16, *shape), dtype=torch.uint8)

    def run(seed: int, epoch: int) -> torch.Tensor:
        return augment(x, FULL, generator(epoch_seed(seed, epoch), CPU))

    a = run(0, 1)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 255
    assert torch.equal(a, run(0, 1))
    assert not torch.equal(a, run(0, 2)) and not torch.equal(a, run(1, 1))
    assert not torch.equal(a.float(), x.float())


def test_a_crop_shifts_each_image_within_its_padding() -> None:
    x = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    x[:, :, 3, 3] = 255  # one bright pixel, at (3, 3)
    out = augment(x, AugmentSpec(crop=2), generator(1, CPU))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    moved = set()
    for img in out[:, 0]:
        ((r, c),) = img.nonzero().tolist()  # still exactly one pixel: shifted, never scaled
        assert abs(r - 3) <= 2 and abs(c - 3) <= 2
        moved.add((r, c))
    assert len(moved) > 5  # each image draws its own offset


def test_a_flip_mirrors_about_half_the_images() -> None:
    x = torch.arange(8, dtype=torch.uint8).repeat(200, 1, 8, 1)
    out = augment(x, AugmentSpec(flip=True), generator(3, CPU))
    flipped = (out[:, 0, 0, 0] == 7).sum().item()
    assert all(torch.equal(o, x[0]) or torch.equal(o, x[0].flip(2)) for o in out)
    assert 60 < flipped < 140


def test_jitter_leaves_grey_images_alone() -> None:
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(augment(x, AugmentSpec(jitter=0.5), generator(0, CPU)), x)


def test_augmentation_changes_training_only(mnist: Path) -> None:
    """The labels and validation data are the same with augmentation on: the first epoch's
    validation of identical weights gives identical numbers only if nothing touched val."""
    plain = fit(_spec(epochs=1, optimizer={"lr": 1e-9}), evaluate_test=False)
    augmented = fit(
        _spec(epochs=1, optimizer={"lr": 1e-9}, augment={"crop": 2, "flip": True}),
        evaluate_test=False,
    )
    assert plain.epochs[0].val_loss == pytest.approx(augmented.epochs[0].val_loss, rel=1e-6)
    assert plain.epochs[0].train_loss != augmented.epochs[0].train_loss
    again = fit(
        _spec(epochs=1, optimizer={"lr": 1e-9}, augment={"crop": 2, "flip": True}),
        evaluate_test=False,
    )
    assert again.epochs[0].train_loss == augmented.epochs[0].train_loss


# -- schedules ---------------------------------------------------------------------------------
def _torch_rates(make: type, steps: int, **kwargs: object) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = make(opt, **kwargs)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_cosine_and_step_schedules_match_torchs() -> None:
    per_epoch, epochs = 7, 5
    steps = per_epoch * epochs
    cosine = [lr_factor(ScheduleSpec(name="cosine"), t, per_epoch, epochs) for t in range(steps)]
    want = _torch_rates(torch.optim.lr_scheduler.CosineAnnealingLR, steps, T_max=steps)
    assert cosine == pytest.approx(want, abs=1e-12)
    step = ScheduleSpec(name="step", step_epochs=2, gamma=0.5)
    got = [lr_factor(step, t, per_epoch, epochs) for t in range(steps)]
    want = _torch_rates(torch.optim.lr_scheduler.StepLR, steps, step_size=14, gamma=0.5)
    assert got == pytest.approx(want, abs=1e-12)


def test_warmup_and_onecycle_follow_their_formulas() -> None:
    warm = ScheduleSpec(name="cosine", warmup_epochs=1)
    assert [lr_factor(warm, t, 4, 10) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(warm, 4, 4, 10) == 1.0  # the cosine's start, then down
    assert lr_factor(warm, 4 + 18, 4, 10) == pytest.approx(0.5)  # halfway through the rest
    one = ScheduleSpec(name="onecycle", warmup_epochs=2)
    rates = [lr_factor(one, t, 5, 10) for t in range(50)]
    assert rates[9] == 1.0 and max(rates) == 1.0  # the peak at the end of the warm-up
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(1 / 41)
    assert all(a < b for a, b in itertools.pairwise(rates[:10]))
    assert all(a > b for a, b in itertools.pairwise(rates[9:]))
    assert lr_factor(ScheduleSpec(), 123, 5, 10) == 1.0


def test_each_epochs_metrics_carry_the_rate_the_schedule_set(mnist: Path) -> None:
    spec = _spec(epochs=3, optimizer={"lr": 0.05}, schedule={"name": "cosine"})
    result = fit(spec, max_batches=2, evaluate_test=False)
    want = [0.05 * lr_factor(spec.schedule, 2 * e - 1, 2, 3) for e in (1, 2, 3)]
    assert [m.lr for m in result.epochs] == pytest.approx(want)
    assert result.last_checkpoint["optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(
        want[-1]
    )


# -- losses ------------------------------------------------------------------------------------
def test_balanced_class_weights_come_from_the_train_counts() -> None:
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    spec = _spec(class_weight="balanced")
    recipe = Recipe.of(spec, Normalize(get_meta("mnist"), CPU), labels, 4)
    assert recipe.class_weight is not None
    assert recipe.class_weight.tolist() == pytest.approx([6 / 12, 6 / 4, 6 / 8, 0.0])
    logits, y = torch.randn(6, 4), labels
    want = torch.nn.functional.cross_entropy(logits, y, weight=recipe.class_weight)
    assert recipe.loss(logits, y) == pytest.approx(want.item())
    smooth = Recipe.of(_spec(label_smoothing=0.1), recipe.normalize, labels, 4)
    want = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    assert smooth.loss(logits, y) == pytest.approx(want.item())


# -- early stopping ----------------------------------------------------------------------------
def test_patience_counts_epochs_since_the_best_beyond_min_delta() -> None:
    rows = [{"val_accuracy": a} for a in (0.5, 0.6, 0.605, 0.59)]
    assert not patience_ran_out(rows, EarlyStoppingSpec(patience=3))
    assert patience_ran_out(rows, EarlyStoppingSpec(patience=2, min_delta=0.01))
    assert not patience_ran_out(rows, EarlyStoppingSpec(patience=2))
    assert not patience_ran_out(rows, EarlyStoppingSpec())


def test_early_stopping_ends_at_the_right_epoch_and_tests_the_best_weights(mnist: Path) -> None:
    # A learning rate too small to move the accuracy: epoch 1 is the best, then no progress.
    spec = _spec(epochs=6, optimizer={"lr": 1e-9}, early_stopping={"patience": 2})
    result = fit(spec)
    assert result.stopped_early_at == 3 and len(result.epochs) == 3
    assert not result.cancelled and result.best_epoch == 1
    assert result.best_checkpoint["epoch"] == 1
    assert result.test_accuracy == accuracy_on_test(result.best_checkpoint)
    assert fit(_spec(epochs=2, optimizer={"lr": 1e-9})).stopped_early_at is None


# -- warm starts -------------------------------------------------------------------------------
def _checkpoint_of(spec: TrainSpec, classes: int | None = None) -> checkpoint.Checkpoint:
    """A checkpoint of ``spec``'s model with random weights (``classes``: on a dataset with that
    many classes)."""
    meta = get_meta(spec.dataset)
    if classes is not None:
        meta = dataclasses.replace(meta, class_names=tuple(f"c{i}" for i in range(classes)))
    torch.manual_seed(123)
    model = checkpoint.build_model(checkpoint.model_config(spec, meta))
    state = checkpoint.cpu_state(model)
    return checkpoint.make(
        spec=spec, meta=meta, epoch=1, model_state=state, optimizer_state=None, metrics=[],
        best_val_accuracy=0.5, best_epoch=1,
    )  # fmt: skip


def test_a_warm_start_loads_the_weights_it_names() -> None:
    source = _checkpoint_of(_spec())
    spec = _spec(init={"job_id": "j"}, seed=7)
    model, _, _, warm = start_model(spec, get_meta("mnist"), CPU, None, source)
    assert warm == {"from": {"job_id": "j"}, "head_rebuilt": False}
    for name, value in model.state_dict().items():
        assert torch.equal(value, source["model_state"][name]), name


def test_a_warm_start_with_another_class_count_rebuilds_the_head() -> None:
    source = _checkpoint_of(_spec(), classes=5)
    spec = _spec(init={"model": "m", "version": 1})
    model, _, _, warm = start_model(spec, get_meta("mnist"), CPU, None, source)
    assert warm is not None and warm["head_rebuilt"] is True
    state = model.state_dict()
    assert state["head.1.weight"].shape[0] == 10
    for name, value in source["model_state"].items():
        if not name.startswith("head."):
            assert torch.equal(state[name], value), name


def test_a_warm_start_from_other_classes_of_the_same_count_rebuilds_the_head() -> None:
    source = _checkpoint_of(_spec())
    source["dataset"] = {**source["dataset"], "class_names": [f"x{i}" for i in range(10)]}
    model, _, _, warm = start_model(
        _spec(init={"job_id": "j"}), get_meta("mnist"), CPU, None, source
    )
    assert warm is not None and warm["head_rebuilt"] is True
    assert not torch.equal(
        model.state_dict()["head.1.weight"], source["model_state"]["head.1.weight"]
    )
    assert torch.equal(
        model.state_dict()["features.0.weight"], source["model_state"]["features.0.weight"]
    )


def test_a_warm_start_from_another_architecture_names_init() -> None:
    source = _checkpoint_of(_spec(model={"arch": "cnn_deep", "channels": [4, 8]}))
    with pytest.raises(SpecError) as err:
        start_model(_spec(init={"job_id": "j"}), get_meta("mnist"), CPU, None, source)
    assert err.value.field == "init"
    with pytest.raises(SpecError):  # same arch, other options
        start_model(
            _spec(init={"job_id": "j"}, model={"channels": [4]}),
            get_meta("mnist"),
            CPU,
            None,
            source,
        )


def test_a_checkpoint_from_before_an_option_existed_still_seeds_its_model() -> None:
    """A checkpoint lacks the options added after it was saved: it was built with their
    defaults, so it fits a spec at those defaults, and not one that sets them otherwise."""
    source = _checkpoint_of(_spec())
    del source["model"]["kwargs"]["convs"]
    model, _, _, warm = start_model(
        _spec(init={"job_id": "j"}), get_meta("mnist"), CPU, None, source
    )
    assert warm is not None and warm["head_rebuilt"] is False
    assert torch.equal(
        model.state_dict()["features.0.weight"], source["model_state"]["features.0.weight"]
    )
    deeper = _spec(init={"job_id": "j"}, model={"channels": [4, 8], "convs": [1, 2]})
    with pytest.raises(SpecError, match="convs") as err:
        start_model(deeper, get_meta("mnist"), CPU, None, source)
    assert err.value.field == "init"


def test_init_without_its_weights_is_refused() -> None:
    with pytest.raises(SpecError, match="init"):
        start_model(_spec(init={"job_id": "j"}), get_meta("mnist"), CPU, None, None)


def test_freezing_trains_only_the_head_for_its_epochs(mnist: Path) -> None:
    source = _checkpoint_of(_spec())
    after: list[dict[str, torch.Tensor]] = []

    def keep(report: EpochReport) -> None:
        after.append(report.checkpoint["model_state"])

    spec = _spec(init={"job_id": "j"}, freeze="features", freeze_epochs=1, optimizer={"lr": 0.05})
    fit(spec, init=source, on_epoch=keep, max_batches=2, evaluate_test=False)
    first, second = after
    for name, value in source["model_state"].items():
        frozen = not name.startswith("head.")
        assert torch.equal(first[name], value) == frozen, name
    assert not torch.equal(second["features.0.weight"], first["features.0.weight"])


# -- architectures -----------------------------------------------------------------------------
def test_resnet_trains_on_colour_images(data_dir: Path) -> None:
    write_cifar10(data_dir, n_train=120, n_test=20)
    spec = TrainSpec.model_validate(
        {
            "dataset": "cifar10", "val_size": 20, "batch_size": 32, "epochs": 1, "device": "cpu",
            "model": {"arch": "resnet", "width": 4}, "augment": {"crop": 2, "jitter": 0.2},
        }
    )  # fmt: skip
    result = fit(spec, max_batches=2)
    assert math.isfinite(result.epochs[0].train_loss) and result.test_accuracy is not None


_NARROW_RESNET_ON_ONE_THREAD = """
import torch
torch.set_num_threads(1)
from cnnlab.architectures.registry import create_architecture
model = create_architecture("resnet", in_shape=(3, 32, 32), num_classes=10, width=4)
model = model.to(memory_format=torch.channels_last)
x = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
for _ in range(3):
    model(x).sum().backward()
"""


@pytest.mark.slow  # a process of its own
def test_a_narrow_resnet_trains_on_one_thread_without_crashing() -> None:
    # A CPU worker's pool process trains on one thread; oneDNN's strided 1x1 convolution crashed
    # the process there (segmentation fault) for resnet's shortcuts under 16 channels.
    done = subprocess.run(
        [sys.executable, "-c", _NARROW_RESNET_ON_ONE_THREAD],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_the_resnet_shortcut_is_a_strided_1x1_convolution() -> None:
    from cnnlab.architectures.builtin import _Pointwise

    shortcut = _Pointwise(4, 8, 2)
    plain = torch.nn.Conv2d(4, 8, 1, stride=2, bias=False)
    plain.weight.data.copy_(shortcut.weight.data)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(shortcut(x), plain(x), atol=1e-6)
    assert list(shortcut.state_dict()) == ["weight"]


def test_precision_auto_is_fp32_on_a_cpu() -> None:
    recipe = Recipe.of(
        _spec(precision="auto"), Normalize(get_meta("mnist"), CPU), torch.tensor([0]), 10
    )
    assert recipe.amp_dtype is None
