"""The cnnlab HTTP API (FastAPI). Build it with :func:`api.main.create_app`."""
