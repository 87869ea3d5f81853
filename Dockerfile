# One image for every cnnlab process; the command picks the role:
#   docker run IMAGE                          -> the HTTP API on :8000 (migrates the database first)
#   docker run IMAGE worker --queues cpu      -> a CPU worker (one process per core)
#   docker run --gpus all IMAGE worker --queues gpu   -> a GPU worker (one process per GPU)
# PyPI's Linux torch wheels carry CUDA, so the same image serves CPU and GPU machines. For a smaller
# CPU-only image: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so code changes don't reinstall torch.
COPY requirements-platform.txt ./
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple \
            -r requirements-platform.txt; \
    else pip install -r requirements-platform.txt; fi
COPY pyproject.toml README.md ./
COPY cnnlab ./cnnlab
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
RUN pip install .

FROM python:${PYTHON_VERSION}-slim
RUN useradd --create-home --uid 1000 cnnlab \
    && mkdir -p /var/lib/cnnlab /data \
    && chown cnnlab:cnnlab /var/lib/cnnlab /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CNNLAB_HOME=/var/lib/cnnlab \
    CNNLAB_DATA_DIR=/data
USER cnnlab
WORKDIR /var/lib/cnnlab
VOLUME ["/var/lib/cnnlab", "/data"]
EXPOSE 8000
# The API's check; worker containers override it with `python -m worker.health`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["cnnlab"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
