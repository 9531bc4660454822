#!/usr/bin/env python3
"""Stand-in for the OpenTelemetry collector (README.md beside this file): an OTLP trace receiver.

gRPC on 4317 (opentelemetry.proto.collector.trace.v1.TraceService/Export) and HTTP on 4318
(POST /v1/traces, protobuf). Every span received is logged as one line
`span service=NAME name=SPAN trace=HEX parent=HEX|-`; :13133/ answers 200 (the collector's
health_check) and :8888/metrics counts spans by service (otelcol_receiver_accepted_spans, the
collector's own metric). Decodes the OTLP protobuf by hand (field numbers of
opentelemetry/proto/trace/v1/trace.proto), so it needs only grpcio.
"""

import collections
import http.server
import sys
import threading
from concurrent import futures

import grpc

ACCEPTED = collections.Counter()
LOCK = threading.Lock()


def fields(buf):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            length, i = varint(buf, i)
            value, i = buf[i:i + length], i + length
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def varint(buf, i):
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def service_name(resource):
    for number, _, kv in fields(resource):
        if number != 1:
            continue
        parts = {n: v for n, _, v in fields(kv)}
        if parts.get(1) == b"service.name":
            for n, _, v in fields(parts.get(2, b"")):
                if n == 1:
                    return v.decode()
    return "unknown"


def record(request):
    """Logs and counts the spans of an ExportTraceServiceRequest."""
    count = 0
    for number, _, resource_spans in fields(request):
        if number != 1:
            continue
        parts = list(fields(resource_spans))
        service = next((service_name(v) for n, _, v in parts if n == 1), "unknown")
        for n, _, scope_spans in parts:
            if n != 2:
                continue
            for m, _, span in fields(scope_spans):
                if m != 2:
                    continue
                s = {k: v for k, _, v in fields(span)}
                parent = s.get(4, b"").hex() or "-"
                print(f"span service={service} name={s.get(5, b'').decode()} "
                      f"trace={s.get(1, b'').hex()} parent={parent}", flush=True)
                with LOCK:
                    ACCEPTED[service] += 1
                count += 1
    return count


def grpc_export(request, context):
    record(request)
    return b""  # an empty ExportTraceServiceResponse


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        record(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        if self.path == "/metrics":
            with LOCK:
                lines = ["# TYPE otelcol_receiver_accepted_spans counter"] + [
                    f'otelcol_receiver_accepted_spans{{service_name="{k}"}} {v}' for k, v in ACCEPTED.items()]
            body = ("\n".join(lines) + "\n").encode()
        else:
            body = b'{"status":"Server available"}\n'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_http(port):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(grpc_export)})
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("0.0.0.0:4317")
    server.start()
    for port in (4318, 13133, 8888):
        serve_http(port)
    print("otel-receiver: OTLP gRPC :4317, HTTP :4318, health :13133, metrics :8888", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
