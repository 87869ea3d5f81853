"""A Python client for the cnnlab service, for notebooks and scripts.

    from cnnlab.client import Client

    with Client("http://127.0.0.1:8000", token) as lab:
        job = lab.submit({"dataset": "mnist", "epochs": 3})
        job = lab.wait(job["id"])              # a progress bar per epoch
        rows = lab.metrics(job["id"])          # [{"epoch": 1, "train_loss": ...}, ...]
        lab.predict(job["id"], [image])        # numpy arrays, PIL images, files or bytes
        model = lab.load_model(job["id"])      # a torch module with the best weights

``url`` and ``token`` default to ``CNNLAB_URL`` and ``CNNLAB_TOKEN``. Every error answer of the
API is raised as :class:`ApiError` with its status, type and one-line message.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

DEFAULT_URL = "http://127.0.0.1:8000"
ENDED = frozenset({"succeeded", "failed", "cancelled"})
# The server sends a comment at least this often on an idle event stream; a longer silence
# means the connection is gone.
EVENT_READ_TIMEOUT_S = 60.0


class ClientError(Exception):
    """The service could not be used: no token, unreachable, or an error answer."""


class ApiError(ClientError):
    """An error answer: ``status`` (HTTP), ``type`` and ``message`` from the API's ``detail``."""

    def __init__(self, status: int, type: str, message: str, detail: dict[str, Any]) -> None:
        super().__init__(f"{message} (HTTP {status}, {type})")
        self.status = status
        self.type = type
        self.message = message
        self.detail = detail


@dataclass
class Event:
    """One server-sent event of a job: ``type`` is ``status`` (``data`` is the job) or
    ``epoch`` (``data`` is the epoch's metrics row); ``id`` resumes the stream after it."""

    type: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class _SSEParser:
    """The ``text/event-stream`` format: fields per line, a blank line ends an event."""

    event: str = "message"
    data: list[str] = field(default_factory=list)
    id: str | None = None

    def feed(self, line: str) -> Event | None:
        if not line:
            if not self.data:
                self.event = "message"
                return None
            payload = json.loads("\n".join(self.data))
            done = Event(self.event, payload, self.id)
            self.event, self.data = "message", []
            return done
        if line.startswith(":"):
            return None  # a comment: keeps the connection alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None


def _error_from(response: httpx.Response) -> ApiError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, dict):
        text = response.text.strip()[:200] or response.reason_phrase
        detail = {"type": "http_error", "message": text}
    return ApiError(
        response.status_code,
        str(detail.get("type", "http_error")),
        str(detail.get("message", response.reason_phrase)),
        detail,
    )


def _encode_image(item: Any) -> tuple[str, bytes]:
    """A file name and encoded bytes for a PIL image, an array, a path or raw bytes."""
    if isinstance(item, bytes | bytearray):
        return "image", bytes(item)
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        return path.name, path.read_bytes()
    from PIL import Image

    if not isinstance(item, Image.Image):
        import numpy as np

        array = np.asarray(item)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        item = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    item.save(buf, format="PNG")
    return "image.png", buf.getvalue()


def _is_array(item: Any) -> bool:
    if isinstance(item, list):
        return True
    return type(item).__module__ == "numpy" and hasattr(item, "tolist")


class Client:
    """A session with one cnnlab server as one user (the owner of ``token``)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("CNNLAB_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("CNNLAB_TOKEN")
        if not token:
            raise ClientError(
                "no API token: pass one or set CNNLAB_TOKEN "
                "(`cnnlab token create USER` on the server prints one)"
            )
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from exc
        if response.is_error:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- jobs -------------------------------------------------------------------------------
    def submit(self, spec: dict[str, Any] | Any) -> dict[str, Any]:
        """Submit a train spec (a dict, or a :class:`cnnlab.spec.TrainSpec`); the new job."""
        if hasattr(spec, "model_dump"):
            spec = spec.model_dump(mode="json")
        job: dict[str, Any] = self._json("POST", "/v1/jobs", json=spec)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._json("GET", f"/v1/jobs/{job_id}")
        return job

    def jobs(
        self, status: str | None = None, *, search_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The caller's jobs, newest first (every page, or the first ``limit``)."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"status": status, "search_id": search_id}
        while True:
            page_size = 100 if limit is None else min(100, limit - len(items))
            query = {k: v for k, v in params.items() if v is not None}
            page = self._json("GET", "/v1/jobs", params={**query, "limit": page_size})
            items.extend(page["items"])
            if not page["next"] or (limit is not None and len(items) >= limit):
                return items
            params["cursor"] = page["next"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the job to stop: a queued one ends at once, a running one within an epoch."""
        job: dict[str, Any] = self._json("POST", f"/v1/jobs/{job_id}/cancel")
        return job

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        """One dict per finished epoch: epoch, train_loss, val_loss, val_accuracy, seconds."""
        rows: list[dict[str, Any]] = self._json("GET", f"/v1/jobs/{job_id}/metrics")
        return rows

    def metrics_frame(self, job_id: str) -> pd.DataFrame:
        """The metrics as a pandas DataFrame indexed by epoch (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "metrics_frame needs pandas (pip install pandas); metrics() returns dicts"
            ) from None
        return pd.DataFrame(self.metrics(job_id)).set_index("epoch")

    # -- live progress ----------------------------------------------------------------------
    def events(self, job_id: str, *, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's events as they happen, until it ends: a ``status`` event per status
        change and an ``epoch`` event per finished epoch. A dropped connection is resumed
        where it stopped (``Last-Event-ID``)."""
        retries = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            timeout = httpx.Timeout(self._http.timeout.connect, read=EVENT_READ_TIMEOUT_S)
            try:
                with self._http.stream(
                    "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout
                ) as response:
                    if response.is_error:
                        response.read()
                        raise _error_from(response)
                    parser = _SSEParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        retries = 0
                        last_event_id = event.id or last_event_id
                        yield event
                        if event.type == "status" and event.data.get("status") in ENDED:
                            return
            except httpx.TransportError as exc:
                retries += 1
                if retries > 5:
                    raise ClientError(f"lost the event stream of job {job_id}: {exc}") from exc
                time.sleep(min(2.0, 0.2 * 2**retries))
                continue
            # The server ends the stream once the job has ended (having sent what the client
            # missed); a close before that is a server going away: resume.
            if self.job(job_id)["status"] in ENDED:
                return
            retries += 1
            if retries > 5:
                raise ClientError(f"the event stream of job {job_id} keeps closing")
            time.sleep(0.2)

    def wait(
        self, job_id: str, *, progress: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Block until the job ends; a progress bar over its epochs unless ``progress=False``.
        Returns the ended job (check its ``status``). ``timeout`` (seconds) raises
        :class:`TimeoutError` instead of waiting longer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = EpochBar(self.job(job_id), enabled=progress)
        try:
            for event in self.events(job_id):
                bar.event(event)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} still {bar.status} after {timeout}s")
        finally:
            bar.close()
        return self.job(job_id)

    # -- models -----------------------------------------------------------------------------
    def predict(self, job_id: str, images: Iterable[Any] | Any) -> list[dict[str, Any]]:
        """Classify images with the job's best model; results in input order, each
        ``{"label", "class_name", "probabilities"}``.

        ``images``: a list of numpy arrays or nested lists (0-255, H×W grey or H×W×C colour),
        PIL images, file paths or encoded PNG/JPEG bytes; or one of those alone; or a batch
        array (N×H×W or N×H×W×C)."""
        items: Sequence[Any]
        if _is_array(images) and getattr(images, "ndim", 0) == 2:
            items = [images]  # one grey image
        elif isinstance(images, bytes | str | os.PathLike) or hasattr(images, "getpixel"):
            items = [images]  # one file or PIL image
        else:
            items = list(images)  # a 3-D/4-D array is a batch: one image per first index
        if not items:
            return []
        if all(_is_array(i) for i in items):
            body = {"instances": [i.tolist() if hasattr(i, "tolist") else i for i in items]}
            answer = self._json("POST", f"/v1/jobs/{job_id}/predict", json=body)
        else:
            files = [("files", _encode_image(i)) for i in items]
            answer = self._json("POST", f"/v1/jobs/{job_id}/predict", files=files)
        predictions: list[dict[str, Any]] = answer["predictions"]
        return predictions

    def checkpoint(
        self, job_id: str, path: str | os.PathLike[str] | None = None, *, kind: str = "best"
    ) -> bytes:
        """The job's checkpoint bytes (``best`` by validation accuracy, or ``last``); also
        written to ``path`` when given."""
        data = self._request("GET", f"/v1/jobs/{job_id}/checkpoint", params={"kind": kind}).content
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def load_model(self, job_id: str, *, kind: str = "best", device: str = "cpu") -> nn.Module:
        """The job's trained network as a torch module in eval mode (needs torch)."""
        from cnnlab.checkpoint import load_model, loads

        return load_model(loads(self.checkpoint(job_id, kind=kind)), device)

    # -- searches ---------------------------------------------------------------------------
    def search(
        self,
        base: dict[str, Any],
        grid: dict[str, list[Any]],
        *,
        metric: str = "val_accuracy",
        mode: str = "max",
    ) -> dict[str, Any]:
        """Start a grid search: one trial job per combination of ``grid`` values."""
        body = {"base": base, "grid": grid, "metric": metric, "mode": mode}
        search: dict[str, Any] = self._json("POST", "/v1/searches", json=body)
        return search

    def get_search(self, search_id: str) -> dict[str, Any]:
        search: dict[str, Any] = self._json("GET", f"/v1/searches/{search_id}")
        return search

    def searches(self, *, limit: int = 100) -> list[dict[str, Any]]:
        page = self._json("GET", "/v1/searches", params={"limit": limit})
        items: list[dict[str, Any]] = page["items"]
        return items

    def cancel_search(self, search_id: str) -> dict[str, Any]:
        search: dict[str, Any] = self._json("POST", f"/v1/searches/{search_id}/cancel")
        return search

    def wait_search(
        self, search_id: str, *, poll: float = 1.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Block until every trial has ended; the search (with ``best_job_id``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            search = self.get_search(search_id)
            if search["status"] in ENDED:
                return search
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"search {search_id} still {search['status']} after {timeout}s")
            time.sleep(poll)

    def datasets(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._json("GET", "/v1/datasets")
        return rows


class EpochBar:
    """A tqdm bar over a job's epochs, fed by its events (quiet when disabled or not a TTY)."""

    def __init__(self, job: dict[str, Any], *, enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self.status = job["status"]
        self.total = int(job["spec"].get("epochs") or 0) or None
        self._bar = tqdm(
            total=self.total,
            desc=f"job {job['id'][:8]}",
            unit="epoch",
            disable=None if enabled else True,
            leave=True,
        )
        self._bar.set_postfix_str(self.status)

    def event(self, event: Event) -> None:
        if event.type == "epoch":
            self._bar.update(max(0, int(event.data["epoch"]) - self._bar.n))
            self._bar.set_postfix_str(f"val_acc {event.data['val_accuracy']:.4f}")
        elif event.type == "status":
            self.status = event.data["status"]
            self._bar.set_postfix_str(self.status)

    def write(self, line: str, file: TextIO | None = None) -> None:
        """A line of output (stdout by default) that does not break the bar."""
        self._bar.write(line, file=file)

    def close(self) -> None:
        self._bar.close()
