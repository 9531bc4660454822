# Stand-in for otel/opentelemetry-collector-contrib (README.md beside this file): an OTLP trace
# receiver that logs and counts spans; not the collector.
ARG BASE_IMAGE=localhost/httvps-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-grpcio \
 && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 otel-receiver.py /usr/local/bin/otel-receiver
USER nobody
EXPOSE 4317 4318 8888 13133
ENTRYPOINT ["otel-receiver"]
