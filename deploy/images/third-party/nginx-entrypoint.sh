#!/bin/sh
# The official nginx image's template step: /etc/nginx/templates/X.template becomes
# /etc/nginx/conf.d/X with only the variables set in the environment substituted.
set -eu
if [ -d /etc/nginx/templates ]; then
  defined=$(printf '${%s} ' $(env | cut -d= -f1))
  for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    out=/etc/nginx/conf.d/$(basename "$template" .template)
    envsubst "$defined" <"$template" >"$out"
    echo "$0: rendered $template to $out"
  done
fi
exec "$@"
