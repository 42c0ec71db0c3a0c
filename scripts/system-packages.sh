#!/usr/bin/env bash
# Installs the Debian packages MotCua Edge needs, only those missing. Usage:
#   scripts/system-packages.sh demo   # python3-venv only (the demo's broker is embedded, from PyPI)
#   scripts/system-packages.sh test   # + mosquitto, chromium, espeak-ng, postgresql, portaudio, mtools
#   scripts/system-packages.sh vpi    # test + qemu (system arm64 and user static), mmdebstrap, disk tools
set -euo pipefail
role="${1:-test}"
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
# Kiosk tickets render Vietnamese with DejaVu Sans (falls back to Pillow's font without it).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ "$role" = test ] || [ "$role" = vpi ]; then
  have_cmd mosquitto || need+=(mosquitto mosquitto-clients)
  have_cmd chromium || need+=(chromium)
  have_cmd espeak-ng || need+=(espeak-ng)
  have_cmd mcopy || need+=(mtools dosfstools)
  have_cmd systemd-analyze || need+=(systemd)  # the unit's hardening score (tests/vpi)
  have_cmd mkfs.ext4 || need+=(e2fsprogs)  # the virtual Pi's data disk (tests/vpi, make vpi)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || need+=(libportaudio2)
  ldconfig -p 2>/dev/null | grep -q libsndfile.so.1 || need+=(libsndfile1)
fi
if [ "$role" = vpi ]; then
  have_cmd qemu-system-aarch64 || need+=(qemu-system-arm ipxe-qemu)
  have_cmd qemu-aarch64-static || need+=(qemu-user-static)
  have_cmd mmdebstrap || need+=(mmdebstrap)
  have_cmd socat || need+=(socat)  # qemu guestfwd: one socat per guest connection
  have_cmd sfdisk || need+=(fdisk)
  have_cmd mkfs.vfat || need+=(dosfstools)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo ">> installing Debian packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian enables and starts services on install; the tests start their own on free ports.
for svc in mosquitto postgresql; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
