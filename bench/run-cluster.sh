#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build and run the cluster benchmark: a cluster group's done on one wgd node to a waiter's
# return on another, against one etcd write, a Redisson-style Redis latch and an etcdctl
# barrier, and dones per second from one node and from three. Method and figures:
# docs/benchmarks.md.
#
# Usage: bench/run-cluster.sh [--quick] [--no-redis] [--redis-fsync] [--no-etcdctl]
#                             [--etcd-dir=DIR] [BUILD_DIR]
#
#   --quick          fewer runs and rounds (about 15 s instead of about 50 s)
#   --no-redis       without the Redis latch (and without redis-server)
#   --redis-fsync    Redis with appendfsync always, every write synced to disk as etcd's are
#                    (default: no persistence, as Redis mostly runs for a latch)
#   --no-etcdctl     without the etcdctl barrier
#   --etcd-dir=DIR   where etcd's data directory goes (default: the run's temporary directory;
#                    a tmpfs such as /dev/shm takes the disk's fsync out of every write)
#   BUILD_DIR        the meson build directory to use; set up (release, no tests) if it is not
#                    one yet. Default: build-bench/ at the top of the source tree. wgd needs its
#                    etcd client (-Detcd: libcurl and json-c).
#
# It starts, on free ports of 127.0.0.1 and in a temporary directory: one etcd (a single
# member), three wgd nodes of this build on that etcd (alpha, beta, gamma) and redis-server.
# A report, not a test: it exits 0 whether the targets are met or not (and, with a message,
# when there is no etcd to run), and non-zero only if the benchmark could not be built or
# failed to run. Every process it starts is gone when it exits, however it exits.

set -euo pipefail

quick=
redis=yes
redis_persistence=(--appendonly no)
etcdctl=yes
etcd_dir=
builddir=
for arg in "$@"; do
    case "$arg" in
        --quick) quick=--quick ;;
        --no-redis) redis= ;;
        --redis-fsync) redis_persistence=(--appendonly yes --appendfsync always) ;;
        --no-etcdctl) etcdctl= ;;
        --etcd-dir=*) etcd_dir=${arg#--etcd-dir=} ;;
        -h | --help)
            sed -n '9,21s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-cluster.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) builddir=$arg ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
script=run-cluster.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"
builddir=${builddir:-$srcdir/build-bench}

if ! command -v etcd >/dev/null; then
    echo "run-cluster.sh: etcd not found (apt-get install etcd-server); nothing to measure" >&2
    exit 0
fi
if [ -n "$redis" ] && ! command -v redis-server >/dev/null; then
    echo "run-cluster.sh: redis-server not found (apt-get install redis-server); no Redis latch" >&2
    redis=
fi
if [ -n "$etcdctl" ] && ! command -v etcdctl >/dev/null; then
    echo "run-cluster.sh: etcdctl not found (apt-get install etcd-client); no etcdctl barrier" >&2
    etcdctl=
fi

# Everything the run starts lives here and dies with it: etcd's data (unless --etcd-dir), the
# nodes' sockets and logs, redis-server's directory. The benchmark runs in the background so
# that the trap can stop it; the servers are stopped by their pids, the benchmark first.
bench_temp

# Without wgd's etcd client (-Detcd=disabled, or libcurl or json-c missing) there is no
# bench-cluster to build: say so rather than let meson name an unknown target.
if [ -f "$builddir/build.ninja" ] && ! meson introspect --targets "$builddir" | python3 -c '
import json, sys
sys.exit(0 if any(t["name"] == "bench-cluster" for t in json.load(sys.stdin)) else 1)'; then
    echo "run-cluster.sh: $builddir has no bench-cluster: it is built without wgd's etcd client" \
        "(-Detcd; libcurl and json-c)" >&2
    exit 1
fi
bench_build bench/bench-cluster:executable wgd/wgd:executable
bin=$builddir/bench/bench-cluster
wgd=$builddir/wgd/wgd

# A port of 127.0.0.1 that nobody listens on, for now: the kernel's pick for a socket bound to 0.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# died PID WHAT LOG: if PID is gone, show the end of its log and fail.
died() {
    if ! kill -0 "$1" 2>/dev/null; then
        echo "run-cluster.sh: $2 exited; the end of $3:" >&2
        tail -n 20 "$3" >&2 || true
        return 0
    fi
    return 1
}

# etcd, one member; its /health says true once it has a leader (itself). A port taken between
# free_port and etcd's bind makes it exit: then again, on new ports.
etcd_data=$(mktemp -d "${etcd_dir:-$tmp}/etcd.XXXXXX")
bench_remove "$etcd_data"
etcd_url=
for _ in 1 2 3 4 5; do
    client_port=$(free_port)
    peer_port=$(free_port)
    url=http://127.0.0.1:$client_port
    peer=http://127.0.0.1:$peer_port
    rm -rf "${etcd_data:?}"/*
    etcd --name bench --data-dir "$etcd_data/data" \
        --listen-client-urls "$url" --advertise-client-urls "$url" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "bench=$peer" --initial-cluster-state new \
        --initial-cluster-token "wg-bench-$$" \
        --logger zap --log-outputs stderr --log-level warn \
        </dev/null >"$tmp/etcd.log" 2>&1 &
    etcd_pid=$!
    bench_started "$etcd_pid"
    for _ in $(seq 300); do
        if python3 -c 'import sys, urllib.request
try:
    body = urllib.request.urlopen(sys.argv[1] + "/health", timeout=1).read()
except Exception:
    sys.exit(1)
sys.exit(0 if b"\"health\":\"true\"" in body else 1)' "$url" 2>/dev/null; then
            etcd_url=$url
            break
        fi
        kill -0 "$etcd_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$etcd_url" ] && break
    kill -KILL "$etcd_pid" 2>/dev/null || true
    bench_wait "$etcd_pid" 2>/dev/null || true
done
if [ -z "$etcd_url" ]; then
    echo "run-cluster.sh: etcd did not start; the end of its log:" >&2
    tail -n 20 "$tmp/etcd.log" >&2 || true
    exit 1
fi

# Three nodes, each its own socket, node name, runtime directory and log, as wgd(8) describes a
# node: --etcd and --node-name; not under systemd, never exiting on idle.
sockets=()
for node in alpha beta gamma; do
    mkdir -p "$tmp/$node"
    env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u LISTEN_FDNAMES -u WATCHDOG_USEC -u WATCHDOG_PID \
        XDG_RUNTIME_DIR="$tmp/$node" \
        "$wgd" --socket="$tmp/$node.sock" --idle-timeout=0 --log-level=warning \
        --etcd="$etcd_url" --node-name="$node" \
        </dev/null >"$tmp/$node.log" 2>&1 &
    pid=$!
    bench_started "$pid"
    for _ in $(seq 200); do
        [ -S "$tmp/$node.sock" ] && break
        if died "$pid" "wgd ($node)" "$tmp/$node.log"; then exit 1; fi
        sleep 0.05
    done
    if [ ! -S "$tmp/$node.sock" ]; then
        echo "run-cluster.sh: wgd ($node) does not listen on $tmp/$node.sock" >&2
        exit 1
    fi
    sockets+=("$tmp/$node.sock")
done

# redis-server on TCP, as a latch across machines would use it; by default no persistence, as
# Redis is mostly run for this (no fsync per write), where etcd syncs every write to disk.
redis_addr=
if [ -n "$redis" ]; then
    for _ in 1 2 3 4 5; do
        redis_port=$(free_port)
        redis-server --port "$redis_port" --bind 127.0.0.1 --save '' "${redis_persistence[@]}" \
            --daemonize no --dir "$tmp" --loglevel warning \
            </dev/null >"$tmp/redis.log" 2>&1 &
        redis_pid=$!
        bench_started "$redis_pid"
        for _ in $(seq 100); do
            if { exec 3<>"/dev/tcp/127.0.0.1/$redis_port"; } 2>/dev/null; then
                printf 'PING\r\n' >&3
                line=
                read -r -t 2 line <&3 || true
                exec 3>&-
                if [ "${line%$'\r'}" = "+PONG" ]; then
                    redis_addr=127.0.0.1:$redis_port
                    break
                fi
            fi
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.05
        done
        [ -n "$redis_addr" ] && break
        kill -KILL "$redis_pid" 2>/dev/null || true
        bench_wait "$redis_pid" 2>/dev/null || true
    done
    if [ -z "$redis_addr" ]; then
        echo "run-cluster.sh: redis-server did not start; the end of its log:" >&2
        tail -n 20 "$tmp/redis.log" >&2 || true
        exit 1
    fi
fi

bench_machine
echo "wgd:         $("$wgd" --version 2>/dev/null || echo unknown)"
echo "etcd:        $(etcd --version | sed -n 's/^etcd Version: //p'), one member, data on" \
    "$(df -T "$etcd_data" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
if [ -n "$etcdctl" ]; then
    echo "etcdctl:     $(ETCDCTL_API=3 etcdctl version | sed -n 's/^etcdctl version: //p')"
fi
if [ -n "$redis" ]; then
    echo "redis:       $(redis-server --version | sed 's/^Redis server //'), ${redis_persistence[*]}"
fi

echo
echo "== bench-cluster${quick:+ $quick}"
args=(--etcd "$etcd_url")
for s in "${sockets[@]}"; do
    args+=(--node "$s")
done
[ -n "$redis" ] && args+=(--redis "$redis_addr")
[ -z "$etcdctl" ] && args+=(--no-etcdctl)
[ -n "$quick" ] && args+=("$quick")
"$bin" "${args[@]}" &
bench_pid=$!
bench_started "$bench_pid"
status=0
bench_wait "$bench_pid" || status=$?
# A node that logged warnings during the run is worth a look: say so.
for node in alpha beta gamma; do
    if [ -s "$tmp/$node.log" ]; then
        echo
        echo "wgd ($node) logged:"
        tail -n 10 "$tmp/$node.log"
    fi
done
exit "$status"
