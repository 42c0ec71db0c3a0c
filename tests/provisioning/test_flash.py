"""flash on plain image files: progress, read-back verification, bundle on the FAT boot partition."""

from __future__ import annotations

import io
import lzma
import os
import struct
import subprocess
from pathlib import Path

import pytest
from pyfatfs.PyFatFS import PyFatFS

from provisioning.flash import FlashError, flash, inspect_target, system_disk_reasons

SECTOR = 512
BOOT_START = 2048  # sectors, as Raspberry Pi OS images do
BOOT_SECTORS = 80 * 1024  # 40 MiB FAT32
ROOT_SECTORS = 8 * 1024


def build_disk(tmp: Path) -> Path:
    """MBR + FAT32 boot partition (mkfs.fat on a file, with an OS file in it) + a 'root' partition."""
    part = tmp / "boot.part"
    subprocess.run(["mkfs.fat", "-F", "32", "-S", "512", "-s", "1", "-n", "BOOTFS", "-C", str(part),
                    str(BOOT_SECTORS * SECTOR // 1024)], check=True, capture_output=True)
    (tmp / "config.txt").write_text("arm_64bit=1\n")
    subprocess.run(["mcopy", "-i", str(part), str(tmp / "config.txt"), "::/config.txt"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    mbr = bytearray(SECTOR)
    entries = [(0x0C, BOOT_START, BOOT_SECTORS), (0x83, BOOT_START + BOOT_SECTORS, ROOT_SECTORS)]
    for i, (ptype, start, count) in enumerate(entries):
        e = struct.pack("<B3sB3sII", 0, b"\x00\x00\x00", ptype, b"\x00\x00\x00", start, count)
        mbr[446 + 16 * i: 446 + 16 * (i + 1)] = e
    mbr[510:512] = b"\x55\xaa"
    disk = tmp / "raspios.img"
    with open(disk, "wb") as fh:
        fh.write(mbr)
        fh.write(b"\0" * (BOOT_START * SECTOR - SECTOR))
        fh.write(part.read_bytes())
        fh.write(os.urandom(ROOT_SECTORS * SECTOR))  # stands in for the root filesystem
    return disk


def make_bundle(root: Path) -> Path:
    b = root / "out" / "boot"
    (b / "motcua").mkdir(parents=True)
    (b / "user-data").write_text("#cloud-config\nhostname: \"k-03390-01\"\n")
    (b / "network-config").write_text("network:\n  version: 2\n")
    (b / "meta-data").write_text("instance-id: \"motcua-k-03390-01-g1\"\n")
    (b / "motcua" / "kiosk.toml").write_text("[device]\nid = \"k-03390-01\"\n")
    (b / "motcua" / "device.key").write_bytes(os.urandom(241))
    return root / "out"


def read_fat(image: Path, offset: int) -> dict[str, bytes]:
    """Every file on the FAT partition, read with pyfatfs (independent of the mtools used to write)."""
    fs = PyFatFS(str(image), offset=offset, read_only=True)
    try:
        # FAT names are case-insensitive; pyfatfs shows 8.3 names upper-case.
        return {path.lower(): fs.readbytes(path) for path in fs.walk.files()}
    finally:
        fs.close()


@pytest.fixture
def disk(tmp_path: Path) -> tuple[Path, Path]:
    raw = build_disk(tmp_path)
    xz = tmp_path / "raspios.img.xz"
    xz.write_bytes(lzma.compress(raw.read_bytes(), preset=0))
    return raw, xz


def test_flash_xz_to_file_verifies_and_places_bundle(disk, tmp_path: Path) -> None:
    raw, xz = disk
    bundle = make_bundle(tmp_path)
    target = tmp_path / "card.img"
    progress, said = io.StringIO(), []
    result = flash(xz, target, bundle, confirm=lambda t: True, say=said.append, progress_out=progress)

    assert result["verified"] and result["written"] == raw.stat().st_size
    text = progress.getvalue()
    assert "100.0%" in text and "ghi / write" in text and "đọc / verify" in text
    assert any("khớp / match" in s for s in said)
    files = read_fat(target, BOOT_START * SECTOR)
    expected = {"/" + p.relative_to(bundle / "boot").as_posix(): p.read_bytes()
                for p in (bundle / "boot").rglob("*") if p.is_file()}
    for path, content in expected.items():
        assert files.get(path) == content, f"{path} missing or different on the boot partition"
    assert files["/config.txt"] == b"arm_64bit=1\n"  # the OS's own boot files are kept
    assert sorted(result["bundle_files"]) == sorted(p[1:] for p in expected)
    with open(target, "rb") as fh:  # the root partition is exactly the image's
        fh.seek((BOOT_START + BOOT_SECTORS) * SECTOR)
        with open(raw, "rb") as src:
            src.seek((BOOT_START + BOOT_SECTORS) * SECTOR)
            assert fh.read() == src.read()


def test_corrupted_write_is_detected(disk, tmp_path: Path) -> None:
    raw, _ = disk
    calls = {"n": 0}

    def faulty_card(fd: int, data: bytes) -> int:  # a card that silently flips a bit in block 3
        calls["n"] += 1
        if calls["n"] == 3:
            data = bytes([data[100] ^ 0x01]).join([data[:100], data[101:]])
        return os.write(fd, data)

    with pytest.raises(FlashError, match="READ-BACK MISMATCH"):
        flash(raw, tmp_path / "card.img", None, confirm=lambda t: True, say=lambda s: None,
              progress_out=io.StringIO(), write_chunk=faulty_card)


def test_refusals(disk, tmp_path: Path) -> None:
    raw, xz = disk
    with pytest.raises(FlashError, match="cancelled"):
        flash(xz, tmp_path / "card.img", None, confirm=lambda t: False, say=lambda s: None)
    assert not (tmp_path / "card.img").exists()
    with pytest.raises(FlashError, match="image itself"):
        flash(raw, raw, None, confirm=lambda t: True, say=lambda s: None)
    with pytest.raises(FlashError, match="not a first-boot bundle"):
        flash(raw, tmp_path / "c.img", tmp_path, confirm=lambda t: True, say=lambda s: None)
    # the disk holding / on this machine is refused by inspection (nothing is opened for writing)
    root_dev = next((line.split()[0] for line in Path("/proc/mounts").read_text().splitlines()
                     if line.split()[1] == "/" and line.startswith("/dev/")), None)
    if root_dev and Path(root_dev).exists():
        _, reasons = inspect_target(Path(root_dev))
        assert reasons, f"{root_dev} (holding /) was not refused"
    _, reasons = inspect_target(Path("/dev/sdzz"))
    assert reasons and "does not exist" in reasons[0]


def test_system_disk_heuristics_on_a_fake_sysfs(tmp_path: Path) -> None:
    sys_root = tmp_path / "sys"

    def disk(name: str, sectors: int, removable: str, usb: bool, parts: list[str]) -> None:
        real = tmp_path / "devices" / ("usb1/1-1/host0" if usb else "pci0000:00/ata1") / "block" / name
        real.mkdir(parents=True)
        (real / "size").write_text(str(sectors))
        (real / "removable").write_text(removable)
        (real / "device").mkdir()
        for p in parts:
            (real / p).mkdir()
            (real / p / "partition").write_text("1")
        (sys_root / "block").mkdir(parents=True, exist_ok=True)
        (sys_root / "block" / name).symlink_to(real)

    disk("sda", 2_000_000_000, "0", False, ["sda1", "sda2"])
    disk("sdb", 60_000_000, "1", True, ["sdb1"])
    disk("sdc", 60_000_000, "0", True, [])
    mounts = "/dev/sda2 / ext4 rw 0 0\n/dev/sda1 /boot/efi vfat rw 0 0\n"
    reasons = system_disk_reasons("sda", sys_root=sys_root, mounts_text=mounts, root_disk="sda")
    text = " ".join(reasons)
    assert "running system" in text and "mounted at /boot/efi" in text and "too large" in text
    assert "fixed disk" in text
    assert system_disk_reasons("sdb", sys_root=sys_root, mounts_text=mounts, root_disk="sda") == []
    assert system_disk_reasons("sdc", sys_root=sys_root, mounts_text=mounts) == []  # USB reader
    mounted = system_disk_reasons("sdb", sys_root=sys_root, mounts_text="/dev/sdb1 /media/x vfat rw 0 0\n")
    assert mounted and "/media/x" in mounted[0]
    swaps = "Filename Type\n/dev/sdb1 partition 1 0 -2\n"
    swap = system_disk_reasons("sdb", sys_root=sys_root, swaps_text=swaps)
    assert swap and "swap" in swap[0]
