"""A Python client for the cnnlab service, for notebooks and scripts.

    from cnnlab.client import Client

    with Client("http://127.0.0.1:8000", token) as lab:
        job = lab.submit({"dataset": "mnist", "epochs": 3})
        job = lab.wait(job["id"], on_event=print)  # each status change and finished epoch
        rows = lab.metrics(job["id"])          # [{"epoch": 1, "train_loss": ...}, ...]
        lab.predict(job["id"], [image])        # numpy arrays, PIL images, files or bytes
        model = lab.load_model(job["id"])      # a torch module with the best weights

``url`` and ``token`` default to ``CNNLAB_URL`` and ``CNNLAB_TOKEN``. Every error answer of the
API is raised as :class:`ApiError` with its status, type and one-line message. Statuses, and
which of them are final, are :mod:`cnnlab.status`'s.

The package is laid out as httpx is: ``_client`` (the HTTP calls), ``_events`` (server-sent
events), ``_images`` (inputs of ``predict``), ``_errors``; torch and pandas are imported only by
the methods that need them.
"""

from cnnlab.client._client import DEFAULT_URL, Client
from cnnlab.client._errors import ApiError, ClientError
from cnnlab.client._events import Event

__all__ = ["DEFAULT_URL", "ApiError", "Client", "ClientError", "Event"]
