"""Predictions over HTTP: request bodies within their limits, checked inputs, cached models.

``limits``: the body ceiling for every route and the 413 it answers; ``uploads``: a prediction
request's images or pixel arrays; ``arrays``: pixel arrays checked against a model's shape;
``service``: the job's model from the store, cached, and its predictions.
"""
