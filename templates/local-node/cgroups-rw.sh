#!/bin/sh
# Local (systemd-nspawn) nodes only. On a cgroup v1 host nspawn mounts the
# controllers read-only, but Nomad clients must create cgroups for their tasks.
# These nodes are test machines on one host, not a security boundary.
# Every controller is tried (one that fails does not stop the others) and the unit
# fails if any stays read-only, so the node is not reported ready half-writable.
set -u
[ "$(stat -fc %T /sys/fs/cgroup)" = "tmpfs" ] || exit 0 # cgroup v2: nothing to do
mount -o remount,rw /sys/fs/cgroup || exit 1

read_only() {
  options=$(awk -v d="$1" '$2 == d { print $4 }' /proc/mounts)
  case "$options" in ro,* | ro) return 0 ;; *) return 1 ;; esac
}

make_writable() {
  dir=$1
  attempt=0
  while read_only "$dir"; do
    [ "$attempt" -ge 5 ] && return 1
    attempt=$((attempt + 1))
    mount -o remount,rw "$dir" 2>/dev/null && continue
    # a busy read-only mount cannot be remounted: mount the hierarchy afresh (lazily
    # detaching the old one if something still holds it open)
    umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || { sleep 0.2; continue; }
    mount -t cgroup -o "rw,nosuid,nodev,noexec,$(basename "$dir")" cgroup "$dir" || sleep 0.2
  done
}

failed=""
for dir in /sys/fs/cgroup/*/; do
  dir=${dir%/}
  [ -L "$dir" ] && continue
  make_writable "$dir" || failed="$failed $(basename "$dir")"
done
if [ -n "$failed" ]; then
  echo "cgroup controllers still read-only:$failed" >&2
  exit 1
fi
