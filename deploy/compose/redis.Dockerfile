# Redis for compose.fleet.yaml where docker.io cannot be reached: Debian's redis-server (7.0)
# on the same base as the sidecar image. compose.fleet.test.yaml builds it; by hand:
#
#   podman build --build-arg BASE_IMAGE=localhost/python-base:bookworm \
#     -f deploy/compose/redis.Dockerfile -t localhost/openclaw-fleet-redis:test deploy/compose
#
# Like the official redis image: runs as the redis user in /data (the volume), and a
# `redis-server ...` command gets --protected-mode no (no config file names a bind address, so
# protected mode would refuse every client from another container).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && chown redis:redis /data

USER redis
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$1\" = redis-server ]; then exec \"$@\" --protected-mode no; fi; exec \"$@\"", "redis-entrypoint"]
CMD ["redis-server"]
