"""The client's calls for evaluations, comparisons and batch predictions of registered models
(mixed into :class:`cnnlab.client.Client`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from cnnlab.status import JobStatus

# Where each kind of resource lives.
RESOURCES = {
    "evaluate": "/v1/evaluations",
    "compare": "/v1/comparisons",
    "batch_predict": "/v1/batch-predictions",
}
POLL_SECONDS = 1.0
UPLOAD_CHUNK = 1 << 20
ARCHIVE_TYPES = {".zip": "application/zip", ".tar": "application/x-tar"}


class ScoringCalls:
    """Evaluations, comparisons and batch predictions."""

    _request: Callable[..., httpx.Response]
    _json: Callable[..., Any]

    def evaluate(
        self,
        name: str,
        dataset: str,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> dict[str, Any]:
        """Start an evaluation of a version of ``name`` (default: ``production``, else the
        newest) on ``dataset``; the new evaluation (``wait_scoring`` follows it)."""
        body: dict[str, Any] = {"dataset": dataset}
        if version is not None:
            body["version"] = version
        if alias is not None:
            body["alias"] = alias
        answer: dict[str, Any] = self._json("POST", f"/v1/models/{name}/evaluations", json=body)
        return answer

    def evaluations(self, name: str) -> dict[str, Any]:
        """The model's evaluations (``items``) and their ids by version (``by_version``)."""
        answer: dict[str, Any] = self._json("GET", f"/v1/models/{name}/evaluations")
        return answer

    def compare(self, name: str, a: int | str, b: int | str, dataset: str) -> dict[str, Any]:
        """Start a comparison of version or alias ``a`` (champion) with ``b`` (challenger)."""
        body = {"a": a, "b": b, "dataset": dataset}
        answer: dict[str, Any] = self._json("POST", f"/v1/models/{name}/comparisons", json=body)
        return answer

    def batch_predict(
        self,
        name: str,
        source: str | os.PathLike[str],
        *,
        version: int | None = None,
        alias: str | None = None,
        top_k: int = 5,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Start a batch prediction of an archive file (zip or tar, streamed) or, when
        ``source`` is not a file, of the dataset it names."""
        params: dict[str, Any] = {"top_k": top_k}
        if version is not None:
            params["version"] = version
        if alias is not None:
            params["alias"] = alias
        path = Path(source)
        url = f"/v1/models/{name}/batch-predictions"
        if not path.is_file():
            body = {"dataset": str(source), "top_k": top_k}
            params.pop("top_k")
            answer: dict[str, Any] = self._json("POST", url, params=params, json=body)
            return answer
        size = path.stat().st_size
        kind = ARCHIVE_TYPES.get(path.suffix.lower(), "application/gzip")

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as f:
                while chunk := f.read(UPLOAD_CHUNK):
                    sent += len(chunk)
                    if on_progress is not None:
                        on_progress(sent, size)
                    yield chunk

        headers = {"Content-Type": kind, "Content-Length": str(size)}
        answer = self._json("POST", url, params=params, content=chunks(), headers=headers)
        return answer

    def scoring(self, kind: str, resource_id: str) -> dict[str, Any]:
        """An evaluation, comparison or batch prediction (``kind`` as its ``kind`` field)."""
        answer: dict[str, Any] = self._json("GET", f"{RESOURCES[kind]}/{resource_id}")
        return answer

    def wait_scoring(
        self,
        resource: dict[str, Any],
        *,
        timeout: float | None = None,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll an evaluation, comparison or batch prediction until it ends; its last state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.scoring(resource["kind"], resource["id"])
            if on_poll is not None:
                on_poll(current)
            if JobStatus(current["status"]).ended:
                return current
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{resource['id']} is still {current['status']}")
            time.sleep(POLL_SECONDS)

    def update_job(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Change a job's ``name``, ``tags`` or ``notes``."""
        answer: dict[str, Any] = self._json("PATCH", f"/v1/jobs/{job_id}", json=fields)
        return answer

    def batch_results(self, batch_id: str, *, format: str = "csv") -> str:
        """A finished batch prediction's results as CSV or JSON lines."""
        return self._request("GET", f"/v1/batch-predictions/{batch_id}/results.{format}").text
