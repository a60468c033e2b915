#!/usr/bin/env bash
# Builds a minimal busybox rootfs from Debian's busybox-static at $1.
set -euo pipefail
dest=$1
bb=/bin/busybox
if ! "$bb" --list >/dev/null 2>&1 || ! file -L "$bb" 2>/dev/null | grep -q static && [ ! -e /usr/share/doc/busybox-static ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
mkdir -p "$dest"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin}
cp "$bb" "$dest/bin/busybox"
for applet in $("$bb" --list); do
  [ -e "$dest/bin/$applet" ] || ln -s busybox "$dest/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dest/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$dest/etc/group"
echo "$dest"
