#!/bin/sh
# Entrypoint of the compose stack's nginx: the secret path and the certificate come from the
# bootstrap's volume (or deploy/compose/tls/ when a certificate is there), then the official
# image's entrypoint renders /etc/nginx/templates/*.template with them and starts nginx.
set -eu
HTTVPS_SECRET_PATH=$(cat /var/lib/httvps/secret-path)
if [ -s /etc/httvps/tls/tls.crt ] && [ -s /etc/httvps/tls/tls.key ]; then
  tls=/etc/httvps/tls
else
  tls=/var/lib/httvps/tls
fi
HTTVPS_TLS_CERT=$tls/tls.crt
HTTVPS_TLS_KEY=$tls/tls.key
export HTTVPS_SECRET_PATH HTTVPS_TLS_CERT HTTVPS_TLS_KEY
exec /docker-entrypoint.sh nginx -g 'daemon off;'
