#!/bin/sh
# Local (systemd-nspawn) nodes only. On a cgroup v1 host nspawn mounts the
# controllers read-only, but Nomad clients must create cgroups for their tasks.
# These nodes are test machines on one host, not a security boundary.
set -eu
[ "$(stat -fc %T /sys/fs/cgroup)" = "tmpfs" ] || exit 0 # cgroup v2: nothing to do
mount -o remount,rw /sys/fs/cgroup
for dir in /sys/fs/cgroup/*/; do
  dir=${dir%/}
  [ -L "$dir" ] && continue
  options=$(awk -v d="$dir" '$2 == d { print $4 }' /proc/mounts)
  case "$options" in ro,* | ro) ;; *) continue ;; esac
  if ! mount -o remount,rw "$dir" 2>/dev/null; then
    # a busy read-only mount cannot be remounted: mount the hierarchy afresh
    umount "$dir"
    mount -t cgroup -o "rw,nosuid,nodev,noexec,$(basename "$dir")" cgroup "$dir"
  fi
done
