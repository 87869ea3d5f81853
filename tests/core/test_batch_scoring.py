"""A batch prediction's decoding and scoring: the fast path for PNG files already at the model's
size gives the very pixels the general path (the predict route's) gives, and the pipelined run
answers as one chunk scored at a time does."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.datasets.catalog import DATASETS
from cnnlab.engine import batch
from cnnlab.engine.checkpoints import cpu_state, make
from cnnlab.engine.predict import Predictor
from cnnlab.errors import BadInput
from cnnlab.spec.model import build_model, model_config
from cnnlab.spec.train import TrainSpec


def _predictor(dataset: str) -> Predictor:
    torch.manual_seed(0)
    spec = TrainSpec.model_validate({"dataset": dataset, "model": {"channels": [4, 8]}})
    meta = DATASETS[dataset]
    ckpt = make(
        spec=spec, meta=meta, epoch=1, model_state=cpu_state(build_model(model_config(spec, meta))),
        optimizer_state=None, metrics=[], best_val_accuracy=0.0, best_epoch=1,
    )  # fmt: skip
    return Predictor(ckpt)


def _png(pixels: np.ndarray, **options: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", **options)
    return buf.getvalue()


def _files(shape: tuple[int, ...]) -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    at_size = rng.integers(0, 256, size=shape, dtype=np.uint8)
    grey = at_size if at_size.ndim == 2 else at_size[..., 0]
    colour = np.stack([grey] * 3, axis=-1)
    big = np.kron(grey, np.ones((2, 2), dtype=np.uint8))
    good = _png(at_size)
    return {
        "at size": good,
        "grey": _png(grey),
        "colour": _png(colour),
        "grey with alpha": _png(np.stack([grey, grey], axis=-1)),
        "palette": _png(grey, optimize=True, bits=4) if grey.ndim == 2 else good,
        "larger": _png(big),
        "16-bit": _png(grey.astype(np.uint16) * 257),
        "transparent index": _png(grey, transparency=7),
        "truncated": good[: len(good) // 2],
        "not an image": b"hello",
    }


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_png_decodes_as_the_predict_route_decodes_it(dataset: str) -> None:
    predictor = _predictor(dataset)
    c, h, w = predictor.shape
    files = _files((h, w) if c == 1 else (h, w, c))
    assert batch._png_at_size(predictor, files["at size"]) is not None  # the fast path's case
    for name, data in files.items():
        got = batch.decode_item(predictor, (0, name, data, None))
        try:
            want: np.ndarray | str = predictor.image_to_chw(0, data)
        except BadInput as exc:
            want = exc.message.split(": ", 1)[-1]
        if isinstance(want, str):
            assert got == want, name
        else:
            assert isinstance(got, np.ndarray) and got.shape == (c, h, w), name
            assert np.array_equal(got, want), name


def test_the_pipelined_run_answers_as_one_chunk_at_a_time() -> None:
    predictor = _predictor("mnist")
    rng = np.random.default_rng(5)
    files = [_png(rng.integers(0, 256, size=(28, 28), dtype=np.uint8)) for _ in range(37)]
    items: list[batch.Item] = [(i, f"{i}.png", data, None) for i, data in enumerate(files)]
    items[5] = (5, "5.png", b"not a png", None)
    items[9] = (9, "link", None, "not a regular file (link or device)")
    threads = torch.get_num_threads()
    piped = [row for rows in batch.scored_chunks(predictor, iter(items), 3, size=8) for row in rows]
    assert torch.get_num_threads() == threads
    one = [
        row
        for chunk in batch.chunks(iter(items), 8)
        for row in batch.predict_chunk(predictor, chunk, 3)
    ]
    assert piped == one
    assert [row["index"] for row in piped] == list(range(37))
    assert "decode" in piped[5]["error"] and piped[9]["error"].startswith("not a regular")
    assert all(len(row["top_k"]) == 3 for i, row in enumerate(piped) if i not in (5, 9))
