"""Printer (ESC/POS raster with Vietnamese), voice clips and announcer (WAV sink)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from device.audio.build_clips import CLIPS_DIR, RATE, WORDS
from device.audio.build_clips import main as build_clips
from device.audio.player import Announcer, call_words, number_words
from device.config import AudioConfig, PrinterConfig
from device.printer import Printer, TicketInfo, render_ticket


def test_ticket_is_raster_escpos_with_qr(tmp_path):
    p = Printer(PrinterConfig(kind="file"), tmp_path)
    t = TicketInfo("0123", 123, 2, "LC-03390", "2026-11-30", 4, datetime(2026, 11, 30, 9, 15))
    path = p.print_ticket(t)
    assert path == tmp_path / "prints" / "2026-11-30-0123.bin" and p.last_error is None
    data = path.read_bytes()
    assert b"\x1dv0" in data  # GS v 0: raster image (text and QR)
    assert data.count(b"\x1dv0") >= 2
    for text in ("Quầy số".encode(), b"Qu?y s?", "Quầy".encode("cp1258", "replace")):
        assert text not in data  # the text is raster, so Vietnamese can never print as '?'
    assert b"\x1dV" in data[-10:]  # paper cut
    img = render_ticket(t)
    assert img.width == 384 and np.asarray(img.convert("L")).min() == 0
    ticket, qr = _rasters(data)
    assert np.array_equal(ticket, 1 - (np.asarray(img.convert("L")) > 127))  # the printed dots are the ticket
    qr_img = cv2.copyMakeBorder((255 * (1 - qr)).astype(np.uint8), *[20] * 4, cv2.BORDER_CONSTANT, value=255)
    assert cv2.QRCodeDetector().detectAndDecode(qr_img)[0] == "MOTCUA|LC-03390|2|2026-11-30|123"


def _rasters(data: bytes) -> list[np.ndarray]:
    """The 1-bit images of every ESC/POS ``GS v 0`` raster block (1 = black dot)."""
    out, i = [], 0
    while (i := data.find(b"\x1dv0", i)) != -1:
        xl, xh, yl, yh = data[i + 4 : i + 8]
        width_bytes, height = xl + 256 * xh, yl + 256 * yh
        bits = np.frombuffer(data[i + 8 : i + 8 + width_bytes * height], np.uint8)
        out.append(np.unpackbits(bits.reshape(height, width_bytes), axis=1))
        i += 8 + width_bytes * height
    return out


def test_printer_fault_never_raises(tmp_path):
    p = Printer(PrinterConfig(kind="serial", params={"devfile": "/dev/nonexistent-tty"}), tmp_path)
    t = TicketInfo("0001", 1, 1, "X", "2026-11-30", 0, datetime(2026, 11, 30))
    assert p.print_ticket(t) is None and p.last_error and "printer" in p.last_error


def test_number_words_are_vietnamese():
    assert number_words(2) == ["d2"]
    assert number_words(10) == ["muoi"]
    assert number_words(15) == ["muoi", "lam"]
    assert number_words(21) == ["d2", "muoi_tens", "mot_tens"]
    assert call_words("0123", 2) == ["chime", "moi_so", "d0", "d1", "d2", "d3", "den_quay_so", "d2"]


def test_committed_clips_are_small_16k_mono():
    total = 0
    for name in [*WORDS, "chime"]:
        info = sf.info(str(CLIPS_DIR / f"{name}.wav"))
        assert info.samplerate == RATE and info.channels == 1 and 0.1 < info.duration < 2.0
        total += (CLIPS_DIR / f"{name}.wav").stat().st_size
    assert total < 400_000


def test_build_clips_script_regenerates(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng missing: scripts/system-packages.sh test installs it")
    assert build_clips(["--out", str(tmp_path)]) == 0
    assert {p.stem for p in tmp_path.glob("*.wav")} == {*WORDS, "chime"}


def test_announcer_writes_call_wav_with_volume(tmp_path):
    a = Announcer(AudioConfig(mode="voice", volume=0.5), tmp_path, simulate=True)
    a.announce("0123", 2)
    a.wait_idle()
    assert a.done == 1 and a.last_error is None
    loud = Announcer(AudioConfig(mode="voice", volume=1.0), tmp_path / "loud", simulate=True)
    loud.announce("0123", 2)
    loud.wait_idle()
    quiet_wav = next((tmp_path / "audio").glob("*.wav"))
    loud_wav = next((tmp_path / "loud" / "audio").glob("*.wav"))
    q, _ = sf.read(str(quiet_wav))
    lo, _ = sf.read(str(loud_wav))
    assert len(q) == len(lo) > RATE * 2  # chime + "mời số" + 4 digits + "đến quầy số" + 2
    assert np.abs(q).max() == pytest.approx(np.abs(lo).max() / 2, rel=0.05)
    chime_only = Announcer(AudioConfig(mode="chime"), tmp_path / "c", simulate=True)
    chime_only.announce("0001", 1)
    chime_only.wait_idle()
    c, _ = sf.read(str(next((tmp_path / "c" / "audio").glob("*.wav"))))
    assert len(c) < len(q) / 2
    off = Announcer(AudioConfig(mode="off"), tmp_path / "off", simulate=True)
    off.announce("0001", 1)
    off.wait_idle()
    assert not Path(tmp_path / "off" / "audio").exists()


def test_rating_prompt_names_the_ticket():
    from device.audio.player import rating_words

    assert rating_words("A0123") == ["chime", "moi_danh_gia", "luot_phuc_vu_so", "d0", "d1", "d2", "d3"]
    for name in ("moi_danh_gia", "luot_phuc_vu_so"):
        assert (CLIPS_DIR / f"{name}.wav").is_file()
