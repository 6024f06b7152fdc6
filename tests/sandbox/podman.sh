# Sourced by ./demo and bench/instances.sh: podman isolated in a directory, and a local image.
#
#   . tests/sandbox/podman.sh
#   podman_sandbox DIR IMAGE
#
# Exports CONTAINERS_CONF and CONTAINERS_STORAGE_CONF (storage: vfs under DIR) with what podman
# 4.3.1 needs on these machines (explicit ulimits, runc), and imports IMAGE: busybox-static
# whose command writes "console for [$APP] $APP_INFO" into the page it serves with httpd on
# port 5900 (the shell stays PID 1 and exits on SIGTERM). No registry is needed.
# `podman_sandbox_cleanup` removes the containers and images of that storage.

podman_sandbox() {
  local dir=$1 image=$2
  export CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf"
  cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
  printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/g"\nrunroot = "%s/r"\n' "$dir" "$dir" >"$CONTAINERS_STORAGE_CONF"
  mkdir -p "$dir/image/bin" "$dir/image/www"
  cp /bin/busybox "$dir/image/bin/"
  local a
  for a in sh httpd printf sleep; do ln -sf busybox "$dir/image/bin/$a"; done
  tar -C "$dir/image" -cf "$dir/image.tar" .
  podman import --quiet --change \
    'CMD ["/bin/sh", "-c", "printf \"console for [%s] %s\\n\" \"$APP\" \"$APP_INFO\" > /www/index.html; trap \"exit 0\" TERM; /bin/httpd -f -p 5900 -h /www & wait"]' \
    "$dir/image.tar" "$image" >/dev/null
}

podman_sandbox_cleanup() {
  podman rm -a -f >/dev/null 2>&1
  podman rmi -a -f >/dev/null 2>&1
}
