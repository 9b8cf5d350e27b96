# The project image: every `apeiro` command (workers for any queue, the webhook gateway, the codec
# server, schedule apply). The product only: the local landscape (`apeiro dev`, `apeiro demo`) is not in it.
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

RUN useradd --create-home --uid 10001 apeiro \
    && install -d -o apeiro /var/lib/apeiro/inventory
WORKDIR /app

# Dependencies first (cached while only sources change), then the sources.
COPY pyproject.toml README.md ./
COPY definitions ./definitions
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY triggers ./triggers
# Core dependencies plus every extra a production process needs: server (sushy, kubernetes and
# openstacksdk for `redfish` workers; kubernetes also resolves k8s: secret references), gardener
# (async Kubernetes client of `gardener` workers), webhook (the gateway), codec (`apeiro codec
# serve`), otel (APEIRO_TRACING). Test and landscape tools are not installed.
# tests/integration/test_image_install.py runs exactly this line in a clean venv.
RUN pip install ".[server,gardener,webhook,codec,otel]"

USER apeiro
# Pipelines the workers resolve by name: the shipped examples, plus a mounted directory.
ENV APEIRO_DEFINITIONS=/etc/apeiro/pipelines
ENTRYPOINT ["apeiro"]
CMD ["--help"]
