# grant-qual: `python app.py` as an unprivileged user. Settings come from the environment (see README.md,
# Settings); nothing secret is in the image. Build: docker build -t grant-qual .
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/grant-qual.db

WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY app.py ./
COPY bot/ bot/

# The SQLite default lives in /data (a volume); with PostgreSQL (DATABASE_URL) nothing is written locally.
RUN useradd --system --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin grantqual \
    && mkdir /data \
    && chown grantqual /data
VOLUME ["/data"]
USER 10001

EXPOSE 3000
# /healthz: on METRICS_PORT when set (Socket Mode has no other HTTP server), else on PORT (HTTP mode).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('METRICS_PORT') or os.environ.get('PORT') or '3000'; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["python", "app.py"]
