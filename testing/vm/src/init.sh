#!/bin/busybox sh
# /init of the lbvm initramfs (built by `lbvm prepare`, run by the kernel as PID 1).
#
# 1. mount /proc, /sys, /dev; insmod the virtio, 9p, overlay and virtio_console
#    modules listed in /modules.order (dependency order, computed at prepare time);
# 2. mount the per-run share `lbvmrun` (read-write) and source its `config`;
# 3. mount the host root (9p tag `hostroot`, read-only) with a tmpfs overlay on top
#    at /newroot, mount fresh proc/sys/dev there, bind the prepared kernel modules
#    on /lib/modules, mount the extra read-write shares at their host paths;
# 4. chroot into /newroot and run /run/lbvm/cmd.sh with stdout and stderr on the
#    virtio-serial ports `lbvm.stdout` and `lbvm.stderr`;
# 5. write the exit code to /run/lbvm/status (and `LBVM-EXIT:<code>` on the
#    console), then power off.
#
# Anything that goes wrong before the command runs is reported on the console
# (ttyS0) and as exit code 125.

B=/bin/busybox
export PATH=/sbin:/bin

say() { echo "lbvm-init: $*"; }
die() {
  say "$*"
  [ -d /newroot/run/lbvm ] && echo 125 > /newroot/run/lbvm/status
  [ -d /run-share ] && echo 125 > /run-share/status
  echo "LBVM-EXIT:125"
  $B sync
  $B poweroff -f
  exit 1
}

$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
for m in $($B cat /modules.order); do
  $B insmod "/modules/$m" || die "insmod $m failed"
done

P9="trans=virtio,version=9p2000.L,msize=262144"
$B mkdir -p /run-share
$B mount -t 9p -o "$P9" lbvmrun /run-share || die "cannot mount the run share"

# `config` defines LBVM_MODULES (host path of the prepared lib/modules tree) and
# calls lbvm_share TAG PATH for each extra read-write share.
SHARES=""
lbvm_share() { SHARES="$SHARES $1"; eval "SHARE_$1=\"\$2\""; }
. /run-share/config || die "cannot read the run config"

$B mount -t 9p -o "$P9,ro,cache=loose" hostroot /host || die "cannot mount the host root"
$B mount -t tmpfs -o mode=0755 tmpfs /upper
$B mkdir -p /upper/data /upper/work
$B mount -t overlay overlay -o lowerdir=/host,upperdir=/upper/data,workdir=/upper/work /newroot \
  || die "cannot mount the overlay"

R=/newroot
$B mount -t proc proc $R/proc
$B mount -t sysfs sys $R/sys
$B mount -t devtmpfs dev $R/dev
$B mkdir -p $R/dev/pts $R/dev/shm $R/run/lbvm $R/lib/modules
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
$B mount -t tmpfs tmpfs $R/dev/shm
$B mount --move /run-share $R/run/lbvm || die "cannot move the run share"
$B mount --bind "$R$LBVM_MODULES" $R/lib/modules || die "cannot bind $LBVM_MODULES on /lib/modules"
for t in $SHARES; do
  eval "p=\"\$SHARE_$t\""
  $B mkdir -p "$R$p"
  $B mount -t 9p -o "$P9" "$t" "$R$p" || die "cannot mount share $t on $p"
done

# The kernel's request_module() helper runs /sbin/modprobe in the initramfs root:
# forward it to the host's modprobe inside the new root.
$B mkdir -p /sbin
printf '#!/bin/busybox sh\nexec /bin/busybox chroot /newroot /sbin/modprobe "$@"\n' > /sbin/modprobe
$B chmod 755 /sbin/modprobe
echo /sbin/modprobe > /proc/sys/kernel/modprobe
$B hostname lbvm

# virtio-serial ports appear asynchronously; wait for both by name.
OUT=""
ERR=""
i=0
while [ -z "$OUT" ] || [ -z "$ERR" ]; do
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] || continue
    case "$($B cat "$p/name")" in
      lbvm.stdout) OUT=/dev/${p##*/} ;;
      lbvm.stderr) ERR=/dev/${p##*/} ;;
    esac
  done
  [ -n "$OUT" ] && [ -n "$ERR" ] && break
  i=$((i + 1))
  [ $i -gt 3000 ] && die "virtio-serial ports did not appear within 30 s"
  $B usleep 10000
done

$B chroot $R /bin/sh /run/lbvm/cmd.sh < /dev/null > "$OUT" 2> "$ERR"
code=$?
echo "$code" > $R/run/lbvm/status
echo "LBVM-EXIT:$code"
$B sync
$B poweroff -f
