# The Airflow image of the docker-compose stack: the official Airflow 3.3.2 image plus nightshard's
# pinned dependencies and the worker package (the local backend runs `nightshard-worker` as a
# subprocess of the Celery worker). DAGs and plugins are not baked in: compose mounts ./dags and
# ./plugins, so an edited config shows up on the next parse without a rebuild.
FROM apache/airflow:3.3.2-python3.11

# The lock pins torch==2.13.0; this index serves its CPU build (the PyPI wheel is the 2.5 GB CUDA one).
# A GPU host builds with --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# The manifest of every published partition records it (see plugins/nightshard/publishing/manifest.py).
ARG NIGHTSHARD_CODE_VERSION=0.1.0+docker

# The official image expects pip to run as the airflow user, never root.
USER airflow
COPY --chown=airflow:root requirements.lock /opt/nightshard/requirements.lock
# The lock already pins apache-airflow==3.3.2 and its providers: pip keeps the image's own copies and
# adds only what is missing (torch, transformers, pyarrow extras).
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" -r /opt/nightshard/requirements.lock

COPY --chown=airflow:root worker /opt/nightshard/worker
# --no-deps: every worker dependency is in the lock, installed above at its pinned version.
RUN pip install --no-cache-dir --no-deps /opt/nightshard/worker

ENV NIGHTSHARD_HOME=/opt/nightshard/var \
    NIGHTSHARD_CODE_VERSION=${NIGHTSHARD_CODE_VERSION} \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
