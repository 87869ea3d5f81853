"""Datasets: what each one is (catalog, no torch), their decoded images and splits, and uploaded
archives ingested into the same (:mod:`cnnlab.datasets.ingest`)."""
