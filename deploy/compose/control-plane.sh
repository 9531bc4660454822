#!/bin/sh
# Entrypoint of the compose stack's control plane: the links it writes point at nginx
# (HTTVPS_PUBLIC_ADDRESS) with the secret path the bootstrap generated, and, while nginx uses
# the bootstrap's self-signed certificate, pin it (unless HTTVPS_CP_GATEWAY_CERT_SHA256 is set).
set -eu
HTTVPS_CP_PUBLIC_GATEWAY="$HTTVPS_PUBLIC_ADDRESS$(cat /var/lib/httvps/secret-path)"
export HTTVPS_CP_PUBLIC_GATEWAY
generated=/var/lib/httvps/tls/tls.crt
if [ -z "${HTTVPS_CP_GATEWAY_CERT_SHA256:-}" ] && [ ! -s /etc/httvps/tls/tls.crt ] && [ -s "$generated" ]; then
  HTTVPS_CP_GATEWAY_CERT_SHA256=$(openssl x509 -in "$generated" -outform DER | sha256sum | cut -d ' ' -f 1)
  export HTTVPS_CP_GATEWAY_CERT_SHA256
fi
exec httvps-control-plane "$@"
