# Stand-in for nginx:1.27 (README.md beside this file): Debian's nginx 1.22 with the official
# image's /docker-entrypoint.sh behaviour that the deployment uses (templates rendered with
# envsubst into /etc/nginx/conf.d/), logs on the container's output.
ARG BASE_IMAGE=localhost/httvps-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light gettext-base openssl \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
 && mkdir -p /usr/share/nginx/html /etc/nginx/templates \
 && echo '<!doctype html><title>Welcome to nginx!</title><h1>Welcome to nginx!</h1>' >/usr/share/nginx/html/index.html \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY --chmod=0755 nginx-entrypoint.sh /docker-entrypoint.sh
EXPOSE 80 443
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
