"""The :class:`Client`: one user's HTTP session with one cnnlab server."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cnnlab.client._datasets import content_type, upload_body
from cnnlab.client._errors import ClientError, error_from
from cnnlab.client._events import Event, SSEParser
from cnnlab.client._images import as_items, request_body
from cnnlab.client._scoring import ScoringCalls
from cnnlab.search.config import SearchConfig
from cnnlab.status import ENDED_NAMES

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

DEFAULT_URL = "http://127.0.0.1:8000"
# The server sends a comment at least this often on an idle event stream; a longer silence
# means the connection is gone.
EVENT_READ_TIMEOUT_S = 60.0
PAGE_SIZE = 100


def resolve_token(token: str | None = None, token_file: str | Path | None = None) -> str:
    """The API token: ``token``, else the file ``token_file``, else ``$CNNLAB_TOKEN``, else the
    file ``$CNNLAB_TOKEN_FILE``. A file (or the environment) keeps the token out of command
    lines, which other users of the machine can read."""
    if token:
        return token
    path = token_file or None
    if path is None and not os.environ.get("CNNLAB_TOKEN"):
        path = os.environ.get("CNNLAB_TOKEN_FILE") or None
    if path is None:
        token = os.environ.get("CNNLAB_TOKEN")
    else:
        try:
            token = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise ClientError(f"cannot read the token file {str(path)!r}: {exc.strerror}") from None
        if not token:
            raise ClientError(f"the token file {str(path)!r} is empty")
    if not token:
        raise ClientError(
            "no API token: set CNNLAB_TOKEN or CNNLAB_TOKEN_FILE (a file holding it), or pass "
            "--token-file (`cnnlab token create USER` on the server prints one)"
        )
    return token


def _dataset_path(ref: str) -> str:
    """``NAME`` → its path; ``NAME@V`` → that version's."""
    name, _, version = ref.partition("@")
    return f"/v1/datasets/{name}" + (f"/versions/{version}" if version else "")


class Client(ScoringCalls):
    """A session with one cnnlab server as one user (the owner of ``token``)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        token_file: str | Path | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("CNNLAB_URL") or DEFAULT_URL).rstrip("/")
        token = resolve_token(token, token_file)
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from exc
        if response.is_error:
            raise error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _pages(self, path: str, params: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
        """The items of a paged list (``items``, ``next``): every page, or the first ``limit``
        items. ``None`` values in ``params`` are left out of the query."""
        query = {k: v for k, v in params.items() if v is not None}
        items: list[dict[str, Any]] = []
        while True:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(items))
            page = self._json("GET", path, params={**query, "limit": size})
            items.extend(page["items"])
            if not page["next"] or (limit is not None and len(items) >= limit):
                return items
            query["cursor"] = page["next"]

    # -- jobs -------------------------------------------------------------------------------
    def submit(self, spec: dict[str, Any] | Any) -> dict[str, Any]:
        """Submit a train spec (a dict, or a :class:`cnnlab.spec.train.TrainSpec`); the new job."""
        if hasattr(spec, "model_dump"):
            spec = spec.model_dump(mode="json")
        job: dict[str, Any] = self._json("POST", "/v1/jobs", json=spec)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._json("GET", f"/v1/jobs/{job_id}")
        return job

    def jobs(
        self,
        status: str | None = None,
        *,
        search_id: str | None = None,
        limit: int | None = None,
        tag: str | None = None,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """The caller's jobs, newest first (every page, or the first ``limit``); ``tag`` and
        ``name`` (contained in the job's name) narrow them."""
        params = {"status": status, "search_id": search_id, "tag": tag, "name": name}
        return self._pages("/v1/jobs", params, limit)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the job to stop: a queued one ends at once, a running one within an epoch."""
        job: dict[str, Any] = self._json("POST", f"/v1/jobs/{job_id}/cancel")
        return job

    def delete(self, job_id: str) -> None:
        """Delete an ended job with its metrics and checkpoints (a registered model version
        keeps its own copy). A queued or running job, or a search's trial, is a conflict."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def me(self) -> dict[str, Any]:
        """Who the token is, and what the account uses: storage and active jobs, with limits."""
        me: dict[str, Any] = self._json("GET", "/v1/me")
        return me

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
        return self._follow(
            f"/v1/jobs/{job_id}/events",
            f"job {job_id}",
            lambda: self.job(job_id)["status"] in ENDED_NAMES,
            last_event_id,
        )

    def search_events(self, search_id: str, *, last_event_id: str | None = None) -> Iterator[Event]:
        """The search's events until it ends: ``status`` (the search) at each change of its
        status, ``trial`` (one trial) whenever a trial's status or epoch changes."""
        return self._follow(
            f"/v1/searches/{search_id}/events",
            f"search {search_id}",
            lambda: self.get_search(search_id)["status"] in ENDED_NAMES,
            last_event_id,
        )

    def _follow(
        self, path: str, what: str, ended: Callable[[], bool], last_event_id: str | None
    ) -> Iterator[Event]:
        """A server-sent event stream until a ``status`` event with an ended status; resumed
        from the last event id when the connection drops."""
        retries = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            timeout = httpx.Timeout(self._http.timeout.connect, read=EVENT_READ_TIMEOUT_S)
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    if response.is_error:
                        response.read()
                        raise error_from(response)
                    parser = SSEParser()
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        retries = 0
                        last_event_id = event.id or last_event_id
                        yield event
                        if event.type == "status" and event.data.get("status") in ENDED_NAMES:
                            return
            except httpx.TransportError as exc:
                retries += 1
                if retries > 5:
                    raise ClientError(f"lost the event stream of {what}: {exc}") from exc
                time.sleep(min(2.0, 0.2 * 2**retries))
                continue
            # The server ends the stream once the job or search has ended (having sent what
            # the client missed); a close before that is a server going away: resume.
            if ended():
                return
            retries += 1
            if retries > 5:
                raise ClientError(f"the event stream of {what} keeps closing")
            time.sleep(0.2)

    def wait(
        self,
        job_id: str,
        *,
        on_event: Callable[[Event], object] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Block until the job ends; the ended job (check its ``status``).

        ``on_event`` is called with each :class:`Event` as it comes (for a progress bar over
        the epochs: ``on_event=EpochBar(lab.job(job_id)).event``, from :mod:`cnnlab.cli.jobs`).
        ``timeout`` (seconds) raises :class:`TimeoutError` instead of waiting longer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in self.events(job_id):
            if on_event is not None:
                on_event(event)
            if deadline is not None and time.monotonic() > deadline:
                status = self.job(job_id)["status"]
                raise TimeoutError(f"job {job_id} still {status} after {timeout}s")
        return self.job(job_id)

    # -- models -----------------------------------------------------------------------------
    def predict(self, job_id: str, images: Iterable[Any] | Any) -> list[dict[str, Any]]:
        """Classify images with the job's best model; results in input order, each
        ``{"label", "class_name", "probabilities"}``.

        ``images``: a list of numpy arrays or nested lists (0-255, H×W grey or H×W×C colour),
        PIL images, file paths or encoded PNG/JPEG bytes; or one of those alone; or a batch
        array (N×H×W or N×H×W×C)."""
        items = as_items(images)
        if not items:
            return []
        answer = self._json("POST", f"/v1/jobs/{job_id}/predict", **request_body(items))
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
        from cnnlab.engine.checkpoints import load_model, loads

        return load_model(loads(self.checkpoint(job_id, kind=kind)), device)

    # -- searches ---------------------------------------------------------------------------
    def search(
        self,
        base: dict[str, Any],
        grid: dict[str, list[Any]] | None = None,
        *,
        config: SearchConfig | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Start a search: one trial per combination of ``grid`` values, or ``num_trials``
        drawn from ``space`` (``sampler`` ``random`` or ``tpe``), maybe stopped early by a
        ``pruner``; ``register_best_as`` (``{"name", "alias"}``) registers the best trial when
        it ends. The body's fields are :class:`~cnnlab.search.config.SearchConfig`'s: give them
        as keywords or as ``config``."""
        body = _search_body(base, grid, config, fields)
        search: dict[str, Any] = self._json("POST", "/v1/searches", json=body)
        return search

    def plan_search(
        self,
        base: dict[str, Any],
        grid: dict[str, list[Any]] | None = None,
        *,
        config: SearchConfig | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """What :meth:`search` with the same arguments would run and could cost (trials,
        most epochs and images, an estimated time and its basis); creates nothing."""
        body = _search_body(base, grid, config, fields)
        plan: dict[str, Any] = self._json("POST", "/v1/searches/plan", json=body)
        return plan

    def get_search(self, search_id: str) -> dict[str, Any]:
        search: dict[str, Any] = self._json("GET", f"/v1/searches/{search_id}")
        return search

    def searches(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The caller's searches, newest first (every page, or the first ``limit``)."""
        return self._pages("/v1/searches", {}, limit)

    def cancel_search(self, search_id: str) -> dict[str, Any]:
        search: dict[str, Any] = self._json("POST", f"/v1/searches/{search_id}/cancel")
        return search

    def delete_search(self, search_id: str) -> None:
        """Delete an ended search with its trials."""
        self._request("DELETE", f"/v1/searches/{search_id}")

    def pause_search(self, search_id: str) -> dict[str, Any]:
        """Start no new trial (running ones go on)."""
        search: dict[str, Any] = self._json("POST", f"/v1/searches/{search_id}/pause")
        return search

    def resume_search(self, search_id: str) -> dict[str, Any]:
        search: dict[str, Any] = self._json("POST", f"/v1/searches/{search_id}/resume")
        return search

    def retry_search(self, search_id: str) -> dict[str, Any]:
        """Run again the trials that failed or were cancelled (409 if there are none)."""
        search: dict[str, Any] = self._json("POST", f"/v1/searches/{search_id}/retry")
        return search

    def trials_csv(self, search_id: str) -> str:
        """The search's trials as CSV text: one row per trial, one column per searched path."""
        return self._request("GET", f"/v1/searches/{search_id}/trials.csv").text

    def trials_frame(self, search_id: str) -> pd.DataFrame:
        """The search's trials as a pandas DataFrame indexed by trial number."""
        import pandas as pd

        return pd.read_csv(io.StringIO(self.trials_csv(search_id))).set_index("trial")

    def wait_search(
        self, search_id: str, *, poll: float = 1.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Block until every trial has ended; the search (with ``best_job_id``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            search = self.get_search(search_id)
            if search["status"] in ENDED_NAMES:
                return search
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"search {search_id} still {search['status']} after {timeout}s")
            time.sleep(poll)

    def datasets(self) -> list[dict[str, Any]]:
        """The built-in datasets and the caller's uploads (``kind``)."""
        rows: list[dict[str, Any]] = self._json("GET", "/v1/datasets")
        return rows

    # -- uploaded datasets ------------------------------------------------------------------
    def upload_dataset(
        self,
        path: str | Path,
        *,
        name: str,
        image_size: int | None = None,
        resize: str | None = None,
        test_size: float | None = None,
        seed: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
        wait: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> dict[str, Any]:
        """Upload a folder (one sub-folder per class, or ``train/`` and ``test/``, or
        ``labels.csv``; zipped while it is sent) or an archive as the next version of ``name``.
        ``progress(sent, total)`` follows the bytes sent (total None for a folder). With
        ``wait``, returns once a worker has decoded it: check ``status`` (``ready`` or
        ``failed``, with ``error``); ``on_event`` gets each progress event meanwhile."""
        path = Path(path)
        params: dict[str, Any] = {"name": name, "image_size": image_size, "resize": resize}
        params |= {"test_size": test_size, "seed": seed}
        version: dict[str, Any] = self._json(
            "POST",
            "/v1/datasets",
            params={k: v for k, v in params.items() if v is not None},
            content=upload_body(path, progress),
            headers={"Content-Type": content_type(path)},
            timeout=httpx.Timeout(self._http.timeout.connect, read=None, write=None),
        )
        if not wait:
            return version
        return self.wait_dataset(name, version["version"], on_event=on_event)

    def dataset(self, ref: str) -> dict[str, Any]:
        """``NAME``: the dataset and its versions (newest first); ``NAME@V``: that version."""
        found: dict[str, Any] = self._json("GET", _dataset_path(ref))
        return found

    def delete_dataset(self, ref: str) -> None:
        """Delete ``NAME@V``, or every version of ``NAME`` (409 while a job uses one)."""
        self._request("DELETE", _dataset_path(ref))

    def dataset_samples(self, ref: str) -> bytes:
        """``NAME@V``'s sample grid, a PNG."""
        name, _, version = ref.partition("@")
        return self._request("GET", f"/v1/datasets/{name}/versions/{version}/samples.png").content

    def wait_dataset(
        self, name: str, version: int, *, on_event: Callable[[Event], object] | None = None
    ) -> dict[str, Any]:
        """Block until the version is decoded (``ready``) or ``failed``; the version."""
        ref = f"{name}@{version}"
        for event in self._follow(
            f"/v1/datasets/{name}/versions/{version}/events",
            f"dataset {ref}",
            lambda: self.dataset(ref)["status"] != "ingesting",
            None,
        ):
            if on_event is not None:
                on_event(event)
            if event.type == "status" and event.data.get("status") != "ingesting":
                break
        return self.dataset(ref)

    # -- the model registry -------------------------------------------------------------------
    def architectures(self) -> list[str]:
        """The model architectures a spec's ``model.arch`` may name."""
        return [row["name"] for row in self._json("GET", "/v1/architectures")]

    def register_model(
        self, name: str, job_id: str, *, checkpoint: str = "best", description: str = ""
    ) -> dict[str, Any]:
        """Copy the job's ``best`` (or ``last``) checkpoint as a new version of model ``name``."""
        body = {
            "name": name,
            "job_id": job_id,
            "checkpoint": checkpoint,
            "description": description,
        }
        version: dict[str, Any] = self._json("POST", "/v1/models", json=body)
        return version

    def models(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The caller's registered models, newest first (every page, or the first ``limit``)."""
        return self._pages("/v1/models", {}, limit)

    def model(self, name: str) -> dict[str, Any]:
        """One model: its versions (newest first) and aliases."""
        model: dict[str, Any] = self._json("GET", f"/v1/models/{name}")
        return model

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point ``alias`` (e.g. ``production``) of model ``name`` at ``version``."""
        answer: dict[str, Any] = self._json(
            "PUT", f"/v1/models/{name}/aliases/{alias}", json={"version": version}
        )
        return answer

    def predict_model(
        self,
        name: str,
        images: Iterable[Any] | Any,
        *,
        alias: str | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Classify images with a version of model ``name`` (``alias`` or ``version``; by
        default alias ``production``, else the newest): ``{"predictions", "version", ...}``."""
        params = {k: v for k, v in {"alias": alias, "version": version}.items() if v is not None}
        items = as_items(images)
        answer: dict[str, Any] = self._json(
            "POST", f"/v1/models/{name}/predict", params=params, **request_body(items)
        )
        return answer

    def resolve_version(self, name: str, alias: str | None = None) -> int:
        """The version number ``alias`` names; without one, the model's ``default_version``
        (the server's choice for a prediction by name)."""
        model = self.model(name)
        aliases: dict[str, int] = model["aliases"]
        if alias is not None:
            if alias not in aliases:
                raise ClientError(f"model {name!r} has no alias {alias!r}")
            return aliases[alias]
        if model["default_version"] is None:
            raise ClientError(f"model {name!r} has no versions")
        return int(model["default_version"])

    def export_model(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        format: str = "onnx",
        version: int | None = None,
        alias: str | None = None,
    ) -> tuple[bytes, int]:
        """A version of model ``name`` as an ONNX or TorchScript file that runs without cnnlab
        (written to ``path`` when given), and the version's number."""
        if version is None:
            version = self.resolve_version(name, alias)
        data = self._request(
            "GET", f"/v1/models/{name}/versions/{version}/export", params={"format": format}
        ).content
        if path is not None:
            Path(path).write_bytes(data)
        return data, version


def _search_body(
    base: Any, grid: Any, config: SearchConfig | None, fields: dict[str, Any]
) -> dict[str, Any]:
    """A search body: ``base`` and the given fields, leaving out those left None (so the
    server's defaults apply, and the server checks the values). A keyword that is not a field
    of :class:`SearchConfig` is a :class:`TypeError`, as a wrong keyword is."""
    if hasattr(base, "model_dump"):
        base = base.model_dump(mode="json")
    unknown = sorted(set(fields) - set(SearchConfig.model_fields))
    if unknown:
        raise TypeError(f"unknown search fields {unknown}")
    given = {} if config is None else config.as_json()
    given.update({"grid": grid, **fields})
    return {"base": base, **{k: v for k, v in given.items() if v is not None}}
