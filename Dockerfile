# The /route service: serving dependencies only (no torch, sklearn, lightgbm, mlflow,
# pandas), one uvicorn worker, the bundle baked in or mounted.
#
#   make demo                                    # or any `outcome-router train --out DIR`
#   docker build -t outcome-router --build-arg BUNDLE=build/demo/bundle .
#   docker run -p 8000:8000 outcome-router
#   docker run -p 8000:8000 -v /srv/bundles/v7:/srv/bundle:ro outcome-router   # mounted instead
#
# One process per container: scale with more containers (one per core) behind a load
# balancer, not with --workers (see README, "Running in production").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The base install is exactly the serving dependencies (pyproject `dependencies`,
# httptools and uvloop included). Never `[train]`.
COPY pyproject.toml README.md ./
COPY features ./features
COPY serving ./serving
COPY training ./training
RUN pip install . && useradd --system --uid 10001 --no-create-home router

# The bundle: a folder inside the build context (verified against its manifest's
# sha256 at start-up). A volume mounted on /srv/bundle replaces it at run time.
ARG BUNDLE=build/demo/bundle
COPY ${BUNDLE} /srv/bundle

ENV OUTCOME_ROUTER_BUNDLE=/srv/bundle \
    OUTCOME_ROUTER_INTRA_OP_THREADS=1

USER router
EXPOSE 8000

# Readiness and liveness: /health answers 200 once the bundle is loaded and verified.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

# One worker; settings from OUTCOME_ROUTER_* variables (serving/config.py).
CMD ["uvicorn", "--factory", "serving.app:create_app", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--http", "httptools", "--no-access-log", "--timeout-graceful-shutdown", "10"]
