"""Build the virtual Pi's disk image: Debian 12 arm64, laid out like Raspberry Pi OS, cached.

    python -m hil.vpi.build_image            # prints the cached image folder (builds it if missing)

Only Debian's packages (mmdebstrap + qemu-user-static, as root) and PyPI's aarch64 wheels go in:
no downloaded OS image. The disk has an MBR with a FAT32 boot partition labelled ``bootfs`` (where
the Pi's firmware and cloud-init's NoCloud seed live, mounted at /boot/firmware) and an ext4 root,
made without loop devices (``mkfs.vfat -C`` + ``mcopy``, ``sfdisk`` + ``dd``, and ``mkfs.ext4 -d``
writing the root at its partition's offset).

What the image holds beyond Debian's packages, and why:
- ``/opt/motcua/wheelhouse``: aarch64 wheels of the kiosk's dependencies, and ``/opt/motcua/deps``,
  a virtualenv (made in the chroot, without pip) into which the host's pip unpacks them, pip
  included, so the first boot installs the kiosk with no network (install_deps).
- The initramfs is built with ``MODULES=list`` (virtio, ext4): the default ``MODULES=most`` takes
  ~9 min per run under qemu-user; a real Pi image uses its own firmware and kernel.
- ``net.ifnames=0`` gives the NIC the Pi's name ``eth0`` (the bundle's network-config names it).
- A test-only command channel (hil/vpi/guest_agent.py on a virtio-serial port): this image is a
  test rig, not a production image.

The cache folder is keyed by a hash of every input (package list, wheel requirements, hook text,
agent), so a change rebuilds and an unchanged recipe reuses the image (across CI runs only
when CI keeps the home folder's cache; a cold build takes ~21 min on the loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
MIRRORS = ["deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main"]
PACKAGES = [
    "systemd", "systemd-sysv", "udev", "dbus", "systemd-timesyncd", "linux-image-arm64", "kmod",
    "cloud-init", "locales", "ifupdown", "isc-dhcp-client", "iproute2", "e2fsprogs", "dosfstools",
    "python3", "python3-venv", "ca-certificates", "tzdata", "procps", "coreutils",
    "fonts-dejavu-core", "libportaudio2", "libsndfile1",
]
# The kiosk's runtime dependencies beyond pyproject: lgpio pinned because the aarch64 index holds a
# 2 KB placeholder (0.0.0.2) that pip picks for manylinux_2_28 (see PLATFORM-NOTES).
EXTRA_REQUIREMENTS = ["lgpio==0.2.2.0"]
# Published only as source (pure Python): built into a py3-none-any wheel on the host first.
PURE_SDIST = ["sdnotify"]
PLATFORMS = ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"]
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "ext4", "vfat"]
BOOT_MB, ROOT_MB = 256, 4096
BOOT_LABEL = "bootfs"
RECIPE_VERSION = 3  # bump when the build steps change meaning (3: deps installed from the host)
# pip itself goes into the deps venv too: the first boot and code updates run `python -m pip` from it.
HOST_INSTALLED = ["pip"]
PYVER = "3.11"  # bookworm's python3; the host compiles the deps' .pyc only when it runs the same


def cache_root() -> Path:
    env = os.environ.get("MOTCUA_VPI_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "motcua-vpi"


def requirements() -> list[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + list(meta["optional-dependencies"]["kiosk"])
    return sorted(set(reqs + EXTRA_REQUIREMENTS))


def _fstab() -> str:
    return ("/dev/vda2  /               ext4  defaults,noatime  0 1\n"
            f"LABEL={BOOT_LABEL}  /boot/firmware  vfat  defaults,umask=0077,nofail  0 2\n")


CLOUD_CFG = ("# MotCua virtual Pi: read the NoCloud seed from the FAT boot partition, "
             "as Raspberry Pi OS does.\n") + f"""datasource_list: [NoCloud, None]
datasource:
  NoCloud:
    fs_label: {BOOT_LABEL}
"""

AGENT_UNIT = """[Unit]
Description=MotCua virtual Pi test command channel (virtio-serial, test images only)
After=dev-virtio\\x2dports-motcua.agent.device
Wants=dev-virtio\\x2dports-motcua.agent.device

[Service]
ExecStart=/usr/bin/python3 /usr/local/sbin/motcua-vpi-agent
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""

INITRAMFS_HOOK = """#!/bin/sh
# MotCua virtual Pi: MODULES=list builds the initramfs in seconds under qemu-user.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0;; esac
. /usr/share/initramfs-tools/hook-functions
for m in @MODULES@; do manual_add_modules "$m"; echo "$m" >> "${DESTDIR}/conf/modules"; done
""".replace("@MODULES@", " ".join(INITRAMFS_MODULES))


def inputs_key() -> str:
    h = hashlib.sha256()
    parts = [RECIPE_VERSION, SUITE, MIRRORS, PACKAGES, requirements(), PLATFORMS, INITRAMFS_MODULES,
             BOOT_MB, ROOT_MB, BOOT_LABEL, CLOUD_CFG, AGENT_UNIT, INITRAMFS_HOOK, _fstab()]
    h.update(json.dumps(parts, sort_keys=True).encode())
    h.update((HERE / "guest_agent.py").read_bytes())
    return h.hexdigest()[:16]


def say(msg: str) -> None:
    print(f"[vpi-image {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd: list[str], **kw) -> None:
    say("$ " + " ".join(cmd)[:300])
    subprocess.run(cmd, check=True, **kw)


def sh_timed(cmd: list[str]) -> None:
    """Run a long command with each output line stamped (where a cold build spends its time)."""
    say("$ " + " ".join(cmd)[:300])
    t0 = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  +{time.monotonic() - t0:6.0f}s {line}", end="", flush=True)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)


def ensure_binfmt() -> None:
    """qemu-user for aarch64 binaries (the chroot steps), registered by hand if systemd did not."""
    mnt = Path("/proc/sys/fs/binfmt_misc")
    if not (mnt / "register").exists():
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", str(mnt)])
    if not (mnt / "qemu-aarch64").exists():
        line = Path("/usr/lib/binfmt.d/qemu-aarch64.conf").read_text().strip()
        (mnt / "register").write_text(line)
    if "enabled" not in (mnt / "qemu-aarch64").read_text():
        raise SystemExit("binfmt qemu-aarch64 is registered but disabled")


def _platform_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", PYVER, "--implementation", "cp",
            "--abi", "cp" + PYVER.replace(".", "")]
    for p in PLATFORMS:
        args += ["--platform", p]
    return args


def download_wheels(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    pure = [r for r in requirements() if any(r.startswith(n) for n in PURE_SDIST)]
    if pure:
        sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), *pure])
    sh([sys.executable, "-m", "pip", "download", "-q", "--dest", str(dest), "--find-links", str(dest),
        *_platform_args(), *requirements(), *HOST_INSTALLED])
    placeholders = [w.name for w in dest.glob("*.whl") if w.stat().st_size < 4096 and "lgpio" in w.name]
    if placeholders:
        raise SystemExit(f"placeholder wheel downloaded (not a real build): {placeholders}")


def install_deps(rootdir: Path, wheelhouse: Path) -> None:
    """The aarch64 wheels into the image's deps venv, by the host's pip (no qemu-user).

    Wheels are only unpacked (``--target`` with ``--platform``: nothing of theirs runs), so the
    host's pip does in seconds what pip under qemu-user did in minutes. The ``.pyc`` files are
    compiled by the host when its Python is the guest's version (the bytecode does not depend on
    the CPU), with the guest's paths; the kiosk runs as ``motcua`` and could not write them."""
    site = rootdir / f"opt/motcua/deps/lib/python{PYVER}/site-packages"
    if not site.is_dir():
        raise SystemExit(f"the deps venv was not created in the image: {site}")
    sh([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--no-index", "--find-links",
        str(wheelhouse), "--target", str(site), "--upgrade", *_platform_args(), *requirements(),
        *HOST_INSTALLED])
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == PYVER:
        sh([sys.executable, "-m", "compileall", "-q", "-j", "0", "-s", str(rootdir), "-p", "/",
            str(site)])
    else:
        say(f"host Python {sys.version_info[:2]} is not {PYVER}: compiling in the chroot (slow)")
        sh(["chroot", str(rootdir), "python3", "-m", "compileall", "-q", "-j", "0",
            f"/opt/motcua/deps/lib/python{PYVER}/site-packages"])


def customize_script(wheelhouse: Path) -> str:
    """Shell run by mmdebstrap's customize hook with the root as $1 (chroot under qemu-user).

    Only what must run in the guest's own userland is here (a few seconds each); the wheels are
    installed from the host afterwards (install_deps)."""
    return f"""set -eux
root="$1"
mkdir -p "$root/boot/firmware" "$root/opt/motcua"
cp -a {wheelhouse} "$root/opt/motcua/wheelhouse"
chroot "$root" python3 -m venv --without-pip /opt/motcua/deps
install -m 0755 {HERE / 'guest_agent.py'} "$root/usr/local/sbin/motcua-vpi-agent"
chroot "$root" systemctl enable motcua-vpi-agent.service
echo "en_US.UTF-8 UTF-8" > "$root/etc/locale.gen"
chroot "$root" locale-gen
echo motcua-vpi > "$root/etc/hostname"
rm -f "$root/etc/machine-id" && touch "$root/etc/machine-id"
"""


def write_files(root: Path) -> None:
    """Config files placed before the packages are configured (initramfs) or after (the rest)."""
    (root / "etc/initramfs-tools/conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/initramfs-tools/conf.d/motcua-vpi.conf").write_text("MODULES=list\n")
    hooks = root / "etc/initramfs-tools/hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    (hooks / "motcua-vpi").write_text(INITRAMFS_HOOK)
    (hooks / "motcua-vpi").chmod(0o755)


def mmdebstrap(rootdir: Path, wheelhouse: Path, work: Path) -> None:
    (work / "customize.sh").write_text(customize_script(wheelhouse))
    files = work / "files"
    write_files(files)
    (files / "etc/fstab").write_text(_fstab())
    (files / "etc/cloud/cloud.cfg.d").mkdir(parents=True, exist_ok=True)
    (files / "etc/cloud/cloud.cfg.d/99_motcua_vpi.cfg").write_text(CLOUD_CFG)
    (files / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
    (files / "etc/systemd/system/motcua-vpi-agent.service").write_text(AGENT_UNIT)
    # One apt run for every package; dpkg without fsync (a throw-away root, written to an image
    # afterwards) and without manuals (no man-db triggers under qemu-user).
    sh_timed(["mmdebstrap", "--mode=root", "--arch=arm64", "--variant=minbase",
        "--include=" + ",".join(PACKAGES), "--aptopt=APT::Install-Recommends \"false\"",
        "--dpkgopt=force-unsafe-io", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        f'--essential-hook=cp -a {files}/. "$1"/',
        f"--customize-hook=sh {work / 'customize.sh'} \"$1\"",
        SUITE, str(rootdir), *MIRRORS])


def make_disk(rootdir: Path, out: Path, work: Path) -> None:
    """MBR: FAT32 'bootfs' at 4 MiB, ext4 root after it. No loop devices, no mounts."""
    boot_img = work / "boot.vfat"
    for p in (boot_img, out):
        p.unlink(missing_ok=True)
    # The label exactly as Raspberry Pi OS has it (lower case): fstab and cloud-init look it up.
    sh(["mkfs.vfat", "-F", "32", "-n", BOOT_LABEL, "-C", str(boot_img), str(BOOT_MB * 1024)])
    kernel = sorted((rootdir / "boot").glob("vmlinuz-*"))[-1]
    initrd = sorted((rootdir / "boot").glob("initrd.img-*"))[-1]
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    sh(["mcopy", "-i", str(boot_img), str(kernel), "::/kernel8.img"], env=env)
    sh(["mcopy", "-i", str(boot_img), str(initrd), "::/initrd.img"], env=env)
    shutil.copy2(kernel, out.parent / "vmlinuz")
    shutil.copy2(initrd, out.parent / "initrd.img")
    start_boot, start_root = 8192, 8192 + BOOT_MB * 2048
    total = (start_root + ROOT_MB * 2048) * 512
    with open(out, "wb") as fh:
        fh.truncate(total)
    table = (f"label: dos\n{start_boot},{BOOT_MB * 2048},c\n{start_root},{ROOT_MB * 2048},83\n")
    sh(["sfdisk", "-q", str(out)], input=table.encode())
    sh(["dd", f"if={boot_img}", f"of={out}", "bs=512", f"seek={start_boot}", "conv=notrunc,sparse",
        "status=none"])
    # The root file system is made in place at its partition's offset (no 4 GB copy).
    sh(["mkfs.ext4", "-q", "-L", "rootfs", "-E", f"offset={start_root * 512}", "-d", str(rootdir),
        str(out), f"{ROOT_MB}M"])


def build(force: bool = False) -> Path:
    key = inputs_key()
    folder = cache_root() / key
    done = folder / "image.json"
    if done.exists() and not force:
        say(f"cached image {folder}")
        return folder
    if os.geteuid() != 0:
        raise SystemExit("building the image needs root (mmdebstrap --mode=root, chroot)")
    t0 = time.monotonic()
    ensure_binfmt()
    work = cache_root() / f"work-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    folder.mkdir(parents=True, exist_ok=True)
    download_wheels(work / "wheelhouse")
    t_wheels = time.monotonic() - t0
    mmdebstrap(work / "rootfs", work / "wheelhouse", work)
    t_root = time.monotonic() - t0
    install_deps(work / "rootfs", work / "wheelhouse")
    t_deps = time.monotonic() - t0
    make_disk(work / "rootfs", folder / "disk.img", work)
    info = {"key": key, "suite": SUITE, "packages": PACKAGES, "requirements": requirements(),
            "wheels": sorted(w.name for w in (work / "wheelhouse").glob("*.whl")),
            "seconds": {"wheels": round(t_wheels), "rootfs": round(t_root), "deps": round(t_deps),
                        "total": round(time.monotonic() - t0)}}
    done.write_text(json.dumps(info, indent=1))
    shutil.rmtree(work)
    say(f"built {folder} in {info['seconds']['total']} s")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rebuild even if the cached image exists")
    ap.add_argument("--print-key", action="store_true", help="print the inputs hash and exit")
    a = ap.parse_args(argv)
    if a.print_key:
        print(inputs_key())
        return 0
    print(build(a.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
