# Railbook: one image for `railbook up` (HTTP intake + gate + alerts), `railbook serve` (Kafka
# consumer) and `railbook dashboard`. Build: docker build -t railbook .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY ingest ingest
COPY policy policy
COPY ledger ledger
COPY dashboard dashboard
COPY alerts alerts
COPY railbook railbook
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/railbook railbook \
 && mkdir -p /var/lib/railbook /etc/railbook && chown railbook /var/lib/railbook
COPY --from=build /install /usr/local
ENV RAILBOOK_CONFIG=/etc/railbook/railbook.toml \
    RAILBOOK_LEDGER=/var/lib/railbook/ledger.duckdb \
    RAILBOOK_LOGLEVEL=INFO \
    PYTHONUNBUFFERED=1
USER railbook
WORKDIR /var/lib/railbook
VOLUME ["/var/lib/railbook"]
EXPOSE 8477 8501
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8477/healthz', timeout=2)" || exit 1
ENTRYPOINT ["railbook"]
CMD ["up", "--host", "0.0.0.0", "--no-dashboard"]
