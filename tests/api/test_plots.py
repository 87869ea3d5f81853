"""The PNG routes return real pictures."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from cnnlab.store.tables import JobStatus
from tests.api.conftest import Caller, TrainedModel, give_model
from tests.api.test_searches import BASE, finish
from tests.utils.api_client import ApiClient

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _picture(content: bytes) -> Image.Image:
    assert content.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def _colours(image: Image.Image) -> int:
    return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def test_learning_curves(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    job = client.post("/v1/jobs", json={**BASE, "epochs": 3}, headers=alice.headers).json()
    url = f"/v1/jobs/{job['id']}/curves.png"
    empty = client.get(url, headers=alice.headers)
    assert empty.status_code == 200 and empty.headers["content-type"] == "image/png"
    _picture(empty.content)

    give_model(db_url, job["id"], trained, epochs=3)
    r = client.get(url, headers=alice.headers)
    image = _picture(r.content)
    assert image.size == (1000, 400)
    assert _colours(image) > 50 and r.content != empty.content


def test_search_heatmap(client: ApiClient, alice: Caller, mnist: Path, db_url: str) -> None:
    for grid in (
        {"optimizer.lr": [0.01, 0.1], "batch_size": [16, 32]},
        {"optimizer.lr": [0.01, 0.05, 0.1]},
        {"optimizer.lr": [0.01, 0.1], "batch_size": [16, 32], "seed": [0, 1]},
    ):
        body = {"base": BASE, "grid": grid}
        search = client.post("/v1/searches", json=body, headers=alice.headers).json()
        for i, trial in enumerate(search["trials"]):
            finish(db_url, trial["job_id"], 0.5 + 0.05 * i, JobStatus.succeeded)
        r = client.get(f"/v1/searches/{search['id']}/heatmap.png", headers=alice.headers)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert _colours(_picture(r.content)) > 20


def test_heatmap_cells() -> None:
    from api.plots import heatmap_grid
    from api.schemas import SearchRead, TrialRead

    def trial(lr: float, bs: int, seed: int, acc: float | None) -> TrialRead:
        params = {"optimizer.lr": lr, "batch_size": bs, "seed": seed}
        return TrialRead(
            job_id="j", params=params, status=JobStatus.running, val_accuracy=acc, score=acc
        )

    trials = [
        trial(0.1, 16, 0, 0.5),
        trial(0.1, 16, 1, 0.7),
        trial(0.1, 32, 0, None),
        trial(0.2, 16, 0, 0.6),
    ]
    search = SearchRead.model_construct(  # type: ignore[call-arg]
        id="s",
        grid={"optimizer.lr": [0.1, 0.2], "batch_size": [16, 32], "seed": [0, 1]},
        trials=trials,
        best_job_id=None,
    )
    axes, rows, cols, cells = heatmap_grid(search)
    assert axes == ["optimizer.lr", "batch_size"] and rows == [0.1, 0.2] and cols == [16, 32]
    assert cells[0][0] == 0.7 and cells[1][0] == 0.6
    assert cells[0][1] != cells[0][1]  # NaN: no finished epoch
