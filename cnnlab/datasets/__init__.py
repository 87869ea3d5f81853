"""Datasets: what each one is (catalog, no torch) and their decoded images and splits."""
