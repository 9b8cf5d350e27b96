# The project image: every `apeiro` command (workers for any queue, the webhook gateway, schedule apply).
# Build: docker build -t apeiro-orchestrator .   Configuration comes from the environment (TEMPORAL_*,
# APEIRO_*; see docs/operations.md), never from files baked into the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# graphviz: `apeiro graph --svg`. (docker-registry from debian-packages.txt is for the local landscape only.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends graphviz ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 apeiro
WORKDIR /app

# Dependencies first (cached while only sources change), then the sources.
COPY pyproject.toml README.md ./
COPY definitions ./definitions
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY triggers ./triggers
COPY landscape ./landscape
# Core dependencies plus the extras production processes need: gardener (Kubernetes client of the
# gardener workers) and webhook (the gateway). Test and landscape tools are not installed.
RUN pip install ".[gardener,webhook]"

USER apeiro
# Pipelines the workers resolve by name: the shipped examples, plus a mounted directory.
ENV APEIRO_DEFINITIONS=/etc/apeiro/pipelines
ENTRYPOINT ["apeiro"]
CMD ["--help"]
