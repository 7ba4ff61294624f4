# tikvops container: `docker build -t tikvops .`, then `docker run tikvops run` (or see
# docker-compose.yml). Configuration comes from environment variables (README, Configuration).

# --- build: the locked runtime dependencies (no dev extras) and the package into a venv ---------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tikvops
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
# The pinned runtime versions first (a layer cached until the lock changes), then our package
# without resolving anything again; pip check fails when the lock misses a declared dependency.
RUN /opt/tikvops/bin/pip install -r requirements.lock
COPY tikvops ./tikvops
COPY bot ./bot
COPY engine ./engine
COPY operator_tikv ./operator_tikv
COPY storage ./storage
COPY diagnosis ./diagnosis
COPY sim ./sim
COPY slackfake ./slackfake
RUN /opt/tikvops/bin/pip install --no-deps . && /opt/tikvops/bin/pip check

# --- runtime: the venv only, a non-root user, the database on a volume ---------------------------
FROM python:3.11-slim
ENV PATH=/opt/tikvops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TIKVOPS_DB=/data/tikvops.db \
    TIKVOPS_HEALTH_ADDR=0.0.0.0:9464 \
    TIKVOPS_LOG_FORMAT=json
RUN groupadd --system --gid 10001 tikvops \
    && useradd --system --uid 10001 --gid tikvops --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin tikvops \
    && mkdir -p /data && chown tikvops:tikvops /data
COPY --from=build /opt/tikvops /opt/tikvops
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9464
# Ready = PD reached recently, Slack connected (when configured), scheduler running (/healthz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('TIKVOPS_HEALTH_ADDR', ':9464').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["tikvops"]
CMD ["run"]
