"""Write a Raspberry Pi OS image to an SD card (or an image file), verify it, add the first-boot bundle.

Steps: refuse targets that look like a system disk; stream the image (``.img`` or ``.img.xz``) in
4 MiB blocks with a progress bar while hashing it; fsync, drop the page cache and read the target
back to compare sha256; find the FAT boot partition in the MBR and copy the bundle onto it with
mtools (``mcopy -i target@@offset``), then read every file back with ``mtype`` and compare. No
loop device and no mount, so an image file needs no root.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import stat
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK = 4 * 1024 * 1024
SECTOR = 512
FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF}
MAX_CARD_BYTES = 512 * 1000**3  # larger than any SD card a kiosk uses: probably a real disk


class FlashError(RuntimeError):
    """Stops the flash with a message for the technician."""


# ------------------------------------------------------------------------------ target checks


@dataclass
class Target:
    path: Path
    is_block: bool
    name: str = ""          # kernel name for block devices (sdb, mmcblk0)
    size: int | None = None


def _read(p: Path) -> str:
    try:
        return p.read_text().strip()
    except OSError:
        return ""


def _disk_of(dev_t: int, sys_root: Path) -> str | None:
    """Kernel name of the whole disk holding device number dev_t (a partition's parent)."""
    link = sys_root / "dev" / "block" / f"{os.major(dev_t)}:{os.minor(dev_t)}"
    try:
        real = link.resolve(strict=True)
    except OSError:
        return None
    return real.parent.name if (real / "partition").exists() else real.name


def _mount_sources(mounts_text: str) -> list[tuple[str, str]]:
    out = []
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("/dev/"):
            out.append((parts[0], parts[1].replace("\\040", " ")))
    return out


def system_disk_reasons(name: str, *, sys_root: Path = Path("/sys"), mounts_text: str = "",
                        swaps_text: str = "", root_disk: str | None = None) -> list[str]:
    """Why the whole disk ``name`` must not be overwritten (empty list = looks like a card)."""
    reasons: list[str] = []
    block = sys_root / "block" / name
    if not block.exists():
        if (sys_root / "class" / "block" / name / "partition").exists():
            return [f"/dev/{name} là một phân vùng, hãy chọn cả thẻ / is a partition: give the whole card"]
        return [f"/dev/{name} không phải là ổ đĩa / is not a disk known to the kernel"]
    members = {name} | {p.name for p in block.iterdir() if (p / "partition").exists()}
    if root_disk == name:
        reasons.append(f"/dev/{name} chứa hệ điều hành đang chạy / holds the running system (/)")
    for src, mnt in _mount_sources(mounts_text):
        if Path(src).name in members:
            reasons.append(f"{src} đang được gắn tại / is mounted at {mnt}")
    for line in swaps_text.splitlines()[1:]:
        dev = line.split()[0] if line.split() else ""
        if Path(dev).name in members:
            reasons.append(f"{dev} là vùng swap / is in use as swap")
    try:
        size = int(_read(block / "size") or 0) * SECTOR
    except ValueError:
        size = 0
    if size > MAX_CARD_BYTES:
        reasons.append(f"/dev/{name} quá lớn so với thẻ nhớ / too large for an SD card ({size / 1e9:.0f} GB)")
    if size == 0:
        reasons.append(f"/dev/{name} không có thẻ / has no medium (size 0)")
    removable = _read(block / "removable") == "1"
    on_usb = "usb" in str((block / "device").resolve()) if (block / "device").exists() else False
    if not (removable or on_usb or name.startswith("mmcblk")):
        reasons.append(f"/dev/{name} là ổ cố định, không phải thẻ nhớ / "
                       "is a fixed disk, not removable or USB")
    return reasons


def inspect_target(path: Path, sys_root: Path = Path("/sys")) -> tuple[Target, list[str]]:
    """Classify the target and list reasons to refuse it. Never opens it for writing."""
    path = Path(path)
    if not path.exists():
        if str(path).startswith("/dev/"):
            return Target(path, False), [f"{path} không tồn tại / does not exist (card not inserted?)"]
        return Target(path, False), []
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode):
        return Target(path, False, size=st.st_size), []
    if not stat.S_ISBLK(st.st_mode):
        return Target(path, False), [f"{path} không phải tệp hay ổ đĩa / "
                                     "is neither a file nor a block device"]
    real = sys_root / "dev" / "block" / f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    name = real.resolve().name if real.exists() else path.name
    root_disk = _disk_of(os.stat("/").st_dev, sys_root)
    reasons = system_disk_reasons(name, sys_root=sys_root, mounts_text=_read(Path("/proc/mounts")),
                                  swaps_text=_read(Path("/proc/swaps")), root_disk=root_disk)
    size = int(_read(sys_root / "block" / name / "size") or 0) * SECTOR
    return Target(path, True, name, size), reasons


# ------------------------------------------------------------------------------ image streaming


class Progress:
    """A one-line text progress bar on stderr (redrawn with \\r on a terminal, every 10% otherwise)."""

    def __init__(self, label: str, total: int | None, out=None) -> None:
        self.label, self.total, self.out = label, total, out or sys.stderr
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.last_decile = -1

    def update(self, done: int, extra: str = "") -> None:
        if not self.total:
            return
        frac = min(done / self.total, 1.0)
        decile = int(frac * 10)
        if not self.tty and decile == self.last_decile:
            return
        self.last_decile = decile
        bar = "#" * int(frac * 30)
        line = f"{self.label} [{bar:<30}] {frac * 100:5.1f}% {extra}"
        self.out.write(("\r" + line) if self.tty else line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def open_image(path: Path) -> tuple[BinaryIO, BinaryIO, int]:
    """(reader of raw image bytes, underlying file for progress, compressed size)."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    size = os.fstat(raw.fileno()).st_size
    magic = raw.read(6)
    raw.seek(0)
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw), raw, size
    if path.suffix in (".gz", ".zip", ".bz2", ".zst"):
        raw.close()
        raise FlashError(f"định dạng chưa hỗ trợ / unsupported image format {path.suffix}: "
                         "use .img or .img.xz")
    return raw, raw, size


def write_image(image: Path, target: Target, progress: Progress | None = None,
                write_chunk: Callable[[int, bytes], int] = os.write) -> tuple[int, str]:
    """Stream the image to the target; returns (bytes written, sha256 of the image)."""
    reader, raw, _ = open_image(image)
    h = hashlib.sha256()
    written = 0
    # O_EXCL on a Linux block device fails with EBUSY while any partition of it is mounted.
    flags = os.O_WRONLY | (os.O_EXCL if target.is_block else os.O_CREAT | os.O_TRUNC)
    try:
        fd = os.open(target.path, flags, 0o644)
    except OSError as exc:
        raise FlashError(f"không mở được / cannot open {target.path} for writing: {exc.strerror} "
                         "(đang được gắn? / still mounted?)") from None
    try:
        while True:
            chunk = reader.read(BLOCK)
            if not chunk:
                break
            h.update(chunk)
            view = memoryview(chunk)
            while view:
                n = write_chunk(fd, bytes(view))
                if n <= 0:
                    raise FlashError("ghi thất bại / write returned 0 bytes (card full or removed?)")
                view = view[n:]
            written += len(chunk)
            if target.size and target.is_block and written > target.size:
                raise FlashError("ảnh lớn hơn thẻ nhớ / the image is larger than the card")
            if progress:
                progress.update(raw.tell(), f"{written / 1e6:,.0f} MB")
        os.fsync(fd)
    finally:
        os.close(fd)
        reader.close()
        raw.close()
    if progress:
        progress.finish()
    return written, h.hexdigest()


def read_back(target: Target, length: int, progress: Progress | None = None) -> str:
    """sha256 of the first ``length`` bytes of the target, read after dropping cached pages."""
    fd = os.open(target.path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        h = hashlib.sha256()
        done = 0
        while done < length:
            chunk = os.read(fd, min(BLOCK, length - done))
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress.update(done)
    finally:
        os.close(fd)
    if progress:
        progress.finish()
    if done < length:
        raise FlashError(f"chỉ đọc lại được / could read back only {done} of {length} bytes")
    return h.hexdigest()


# ------------------------------------------------------------------------------ boot partition


@dataclass
class Partition:
    index: int
    ptype: int
    start: int   # bytes
    size: int    # bytes


def mbr_partitions(first_sector: bytes) -> list[Partition]:
    if len(first_sector) < SECTOR or first_sector[510:512] != b"\x55\xaa":
        raise FlashError("không thấy bảng phân vùng MBR / no MBR partition table on the written image")
    parts = []
    for i in range(4):
        e = first_sector[446 + 16 * i: 446 + 16 * (i + 1)]
        ptype = e[4]
        lba, count = struct.unpack_from("<II", e, 8)
        if ptype == 0xEE:
            raise FlashError("ảnh dùng GPT, chưa hỗ trợ / "
                             "GPT images are not supported (Raspberry Pi OS uses MBR)")
        if ptype and count:
            parts.append(Partition(i + 1, ptype, lba * SECTOR, count * SECTOR))
    return parts


def boot_partition(target_path: Path) -> Partition:
    with open(target_path, "rb") as fh:
        parts = mbr_partitions(fh.read(SECTOR))
    for p in parts:
        if p.ptype in FAT_TYPES:
            return p
    raise FlashError("không thấy phân vùng khởi động FAT / no FAT boot partition in the image")


def _mtools(args: list[str]) -> subprocess.CompletedProcess:
    if not shutil.which(args[0]):
        raise FlashError(f"thiếu {args[0]}: apt-get install mtools")
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}
    return subprocess.run(args, capture_output=True, env=env, timeout=600)


def bundle_files(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file())


def copy_bundle(target_path: Path, part: Partition, bundle: Path) -> list[str]:
    """Copy every file of ``bundle`` to the FAT partition and read each back; returns relative paths."""
    img = f"{target_path}@@{part.start}"
    dirs = sorted({p.parent.relative_to(bundle) for p in bundle_files(bundle)} - {Path(".")},
                  key=lambda d: len(d.parts))
    for d in dirs:
        r = _mtools(["mmd", "-D", "s", "-i", img, "::/" + d.as_posix()])
        if r.returncode and b"exists" not in r.stderr.lower():
            raise FlashError(f"mmd {d}: {r.stderr.decode(errors='replace').strip()}")
    copied = []
    for f in bundle_files(bundle):
        rel = f.relative_to(bundle).as_posix()
        r = _mtools(["mcopy", "-o", "-i", img, str(f), "::/" + rel])
        if r.returncode:
            raise FlashError(f"mcopy {rel}: {r.stderr.decode(errors='replace').strip()}")
        back = _mtools(["mtype", "-i", img, "::/" + rel])
        if back.returncode or back.stdout != f.read_bytes():
            raise FlashError(f"tệp trên thẻ không khớp / {rel} on the card does not match after copying")
        copied.append(rel)
    return copied


# ------------------------------------------------------------------------------ the whole job


def resolve_bundle(bundle: Path) -> Path:
    """Accept the ``device new`` output folder or its ``boot/`` folder."""
    bundle = Path(bundle)
    if (bundle / "boot" / "user-data").exists():
        return bundle / "boot"
    if not (bundle / "user-data").exists():
        raise FlashError(f"{bundle} không có user-data / is not a first-boot bundle (run `device new`)")
    return bundle


def flash(image: Path, target_path: Path, bundle: Path | None, *, confirm: Callable[[Target], bool],
          say: Callable[[str], None] = print, progress_out=None,
          write_chunk: Callable[[int, bytes], int] = os.write) -> dict:
    image = Path(image)
    if not image.is_file():
        raise FlashError(f"không thấy tệp ảnh / image not found: {image}")
    bundle_dir = resolve_bundle(bundle) if bundle else None
    target, reasons = inspect_target(Path(target_path))
    if reasons:
        raise FlashError("TỪ CHỐI GHI / REFUSED: " + "; ".join(reasons))
    if not target.is_block and target.path.exists() and target.path.resolve() == image.resolve():
        raise FlashError("đích trùng với tệp ảnh / the target is the image itself")
    if not confirm(target):
        raise FlashError("đã huỷ / cancelled by the technician")
    say(f"[1/3] Ghi ảnh / writing {image.name} → {target.path}")
    written, digest = write_image(image, target, Progress("      ghi / write ", os.path.getsize(image),
                                                          progress_out), write_chunk)
    say(f"      {written:,} bytes, sha256 {digest[:16]}…")
    say("[2/3] Kiểm tra bằng cách đọc lại / verifying by reading back")
    back = read_back(target, written, Progress("      đọc / verify", written, progress_out))
    if back != digest:
        raise FlashError(f"DỮ LIỆU ĐỌC LẠI KHÁC / READ-BACK MISMATCH: wrote {digest[:16]}…, "
                         f"read {back[:16]}… — thẻ hỏng? thay thẻ khác / faulty card? use another one")
    say("      khớp / match")
    copied: list[str] = []
    if bundle_dir:
        say("[3/3] Chép gói khởi động vào phân vùng boot / copying the first-boot bundle")
        part = boot_partition(target.path)
        copied = copy_bundle(target.path, part, bundle_dir)
        say(f"      {len(copied)} tệp / files on partition {part.index} (offset {part.start})")
    return {"written": written, "sha256": digest, "verified": True, "bundle_files": copied}
