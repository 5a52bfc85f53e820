# The shopstream worker image. Build: docker build -t shopstream .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# dependencies first, so code changes reuse the cached layer
COPY pyproject.toml README.md ./
RUN mkdir -p shopstream streams inference schemas export \
    && pip install . && pip uninstall -y shopstream

COPY . .
RUN pip install --no-deps . && useradd --create-home shopstream \
    && mkdir -p /data /models && chown shopstream /data /models
USER shopstream

ENV SHOPSTREAM_WORKER_DATA_DIR=/data \
    SHOPSTREAM_MODEL_DIR=/models \
    SHOPSTREAM_WEB_HOST=0.0.0.0
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=3s --retries=12 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=2)"
CMD ["shopstream", "worker"]
