#!/usr/bin/env bash
# Side-by-side benchmark of two Quadlet generators on generated .container files.
#   usage: generator/bench/compare.sh OURS REFERENCE [N...]
# REFERENCE is podman's quadlet binary (e.g. the path printed by a fetch of podman 5.4.2).
# For each N (default: 1 1000) it writes N container files (a realistic mix of keys, one drop-in
# directory shared by all) to a temporary directory, then runs both generators with hyperfine
# (output to a tmpfs directory, as /run/systemd/generator is) and reports peak RSS via
# /usr/bin/time. Needs hyperfine.
set -euo pipefail
ours=$(realpath "$1"); ref=$(realpath "$2"); shift 2
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1 1000)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
out=$(mktemp -d -p /dev/shm); trap 'rm -rf "$work" "$out"' EXIT
for n in "${sizes[@]}"; do
  src=$work/src-$n; mkdir -p "$src/container.d"
  printf '[Service]\nRestart=on-failure\n' > "$src/container.d/10-restart.conf"
  for i in $(seq 1 "$n"); do
    cat > "$src/app$i.container" <<UNIT
# Benchmark unit $i
[Unit]
Description=App $i

[Container]
Image=quay.io/example/app:$i
ContainerName=app$i
Environment=ID=$i MODE=prod "GREETING=hello world"
Label=app=app$i
PublishPort=$((10000 + i)):80
Volume=/srv/app$i:/data:Z
Volume=cache$i:/cache
Network=host
HealthCmd=/bin/check --fast
AddCapability=CAP_NET_BIND_SERVICE
Exec=--id $i "--name=app $i"

[Install]
WantedBy=multi-user.target
UNIT
  done
  echo "== $n units"
  for g in "$ours" "$ref"; do
    rss=$(env -i QUADLET_UNIT_DIRS="$src" /usr/bin/time -f %M "$g" -no-kmsg-log "$out" 2>&1 >/dev/null | tail -n1)
    echo "peak RSS $(basename "$g"): ${rss} KiB"
  done
  hyperfine -N --warmup 3 --min-runs 20 \
    -n ours "env -i QUADLET_UNIT_DIRS=$src $ours -no-kmsg-log $out" \
    -n quadlet-5.4.2 "env -i QUADLET_UNIT_DIRS=$src $ref -no-kmsg-log $out"
done
