# One image for every role: `relay run` by default, or `relay api|poller|dispatcher|worker`.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY workers ./workers
RUN python -m venv /opt/relay \
 && /opt/relay/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/relay/bin/pip install --no-cache-dir .

FROM python:3.12-slim
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RELAY_API_HOST=0.0.0.0 \
    RELAY_API_PORT=8080
COPY --from=build /opt/relay /opt/relay
RUN useradd --system --uid 10001 --no-create-home relay
USER 10001
WORKDIR /tmp
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; port=os.environ.get('RELAY_API_PORT','8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["relay"]
CMD ["run"]
