# One image for the bot. The database lives on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HAILUO_DATABASE=/data/hailuo.sqlite3 \
    HAILUO_HTTP_HOST=0.0.0.0 \
    HAILUO_HTTP_PORT=8080

WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY bot.py ./
COPY hailuo ./hailuo
COPY providers ./providers
COPY storage ./storage
COPY cogs ./cogs

RUN useradd --create-home --uid 10001 hailuo \
    && mkdir -p /data \
    && chown hailuo:hailuo /data
USER 10001

VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; e = os.environ.get; p = e('HAILUO_METRICS_PORT', '8081') if e('HAILUO_PUBLIC_URL') else e('HAILUO_HTTP_PORT', '8080'); sys.exit(0 if u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).status == 200 else 1)"]

CMD ["python", "bot.py"]
