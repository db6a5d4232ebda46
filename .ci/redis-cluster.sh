#!/usr/bin/env bash
# Starts a real 3-master Redis Cluster on loopback (ports 7000-7002, no
# replicas) for the approvals tests, or reuses one that is already up and
# healthy. Needs Debian's redis-server and redis-cli (installed if missing).
#
#   bash .ci/redis-cluster.sh
#   GATEBOT_TEST_REDIS_CLUSTER=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 \
#     go test -race -count=1 ./approvals/
#
# Nodes keep nothing on disk (no RDB, no AOF) in a fresh temporary directory;
# stop them with: redis-cli -p 7000 shutdown nosave (and 7001, 7002).
set -euo pipefail

ports=(7000 7001 7002)

cluster_ok() {
  redis-cli -h 127.0.0.1 -p "${ports[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' &&
    [ "$(redis-cli -h 127.0.0.1 -p "${ports[0]}" cluster info 2>/dev/null | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" = "${#ports[@]}" ]
}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "installing redis-server and redis-tools (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null
fi

if cluster_ok; then
  echo "redis cluster already up on 127.0.0.1:${ports[0]}-${ports[-1]}"
  exit 0
fi

base=$(mktemp -d -t gatebot-redis-cluster.XXXXXX)
for p in "${ports[@]}"; do
  if redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1; then
    # A node from an earlier, broken run: start over on a clean one.
    redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 || break; sleep 0.1; done
  fi
  mkdir -p "$base/$p"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$p" \
    --cluster-enabled yes --cluster-config-file "$base/$p/nodes.conf" --cluster-node-timeout 5000 \
    --save "" --appendonly no --dir "$base/$p" --logfile "$base/$p/redis.log"
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

nodes=()
for p in "${ports[@]}"; do nodes+=("127.0.0.1:$p"); done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null

for _ in $(seq 1 100); do
  if cluster_ok; then
    echo "redis cluster up on ${nodes[*]} (data in $base)"
    exit 0
  fi
  sleep 0.1
done
echo "redis cluster did not become healthy; logs in $base" >&2
exit 1
