"""Announcer: assembles clips into a call and plays it on a worker thread.

Output goes to the sound card through sounddevice, or, when simulated, to WAV files in
``<data-dir>/audio/`` (same samples, so tests can check what would have been heard).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from device.audio.build_clips import CLIPS_DIR, RATE
from device.config import AudioConfig

log = logging.getLogger("motcua.audio")
GAP_S = 0.06
KEEP_SIM_WAVS = 100


def number_words(n: int) -> list[str]:
    """Clip names reading 1..99 the Vietnamese way (12 = mười hai, 21 = hai mươi mốt, 25 = hai mươi lăm)."""
    if n < 10:
        return [f"d{n}"]
    tens, unit = divmod(n, 10)
    if tens >= 10:
        return [f"d{c}" for c in str(n)]
    words = ["muoi"] if tens == 1 else [f"d{tens}", "muoi_tens"]
    if unit == 1 and tens > 1:
        words.append("mot_tens")
    elif unit == 5:
        words.append("lam")
    elif unit:
        words.append(f"d{unit}")
    return words


def call_words(label: str, counter: int) -> list[str]:
    """'Mời số 0123 đến quầy số 2': the ticket label digit by digit (letters are not spoken)."""
    digits = [f"d{c}" for c in label if c.isdigit()]
    return ["chime", "moi_so", *digits, "den_quay_so", *number_words(counter)]


def rating_words(label: str) -> list[str]:
    """'Mời quý khách đánh giá lượt phục vụ số 0123': the label's digits, as in a call."""
    return ["chime", "moi_danh_gia", "luot_phuc_vu_so", *(f"d{c}" for c in label if c.isdigit())]


class Announcer:
    def __init__(self, cfg: AudioConfig, data_dir: Path, simulate: bool, clips_dir: Path = CLIPS_DIR) -> None:
        self.cfg, self.simulate = cfg, simulate
        self.out_dir = Path(data_dir) / "audio"
        self.clips_dir = clips_dir
        self._clips: dict[str, np.ndarray] = {}
        self._q: queue.Queue[tuple[str, list[str]] | None] = queue.Queue(maxsize=20)
        self.last_error: str | None = None
        self.played = 0
        self.queued = 0
        self.done = 0
        self._thread = threading.Thread(target=self._run, name="audio", daemon=True)
        self._thread.start()

    def clip(self, name: str) -> np.ndarray:
        if name not in self._clips:
            import soundfile as sf

            data, rate = sf.read(str(self.clips_dir / f"{name}.wav"), dtype="float32")
            if rate != RATE:
                raise ValueError(f"clip {name} is {rate} Hz, expected {RATE}")
            self._clips[name] = data
        return self._clips[name]

    def assemble(self, words: list[str]) -> np.ndarray:
        import numpy as np

        gap = np.zeros(int(GAP_S * RATE), dtype=np.float32)
        parts: list[np.ndarray] = []
        for w in words:
            parts += [self.clip(w), gap]
        return np.clip(np.concatenate(parts) * self.cfg.volume, -1, 1).astype(np.float32)

    def announce(self, label: str, counter: int) -> None:
        """Queue a call (returns at once)."""
        if self.cfg.mode == "off":
            return
        words = call_words(label, counter) if self.cfg.mode == "voice" else ["chime"]
        self._put(label, words)

    def ask_rating(self, label: str) -> None:
        """Queue the rating prompt for the visit just completed (names its ticket)."""
        if self.cfg.mode == "off":
            return
        self._put(f"rate-{label}", rating_words(label) if self.cfg.mode == "voice" else ["chime"])

    def chime(self, tag: str = "chime") -> None:
        if self.cfg.mode != "off":
            self._put(tag, ["chime"])

    def _put(self, tag: str, words: list[str]) -> None:
        try:
            self._q.put_nowait((tag, words))
            self.queued += 1
        except queue.Full:
            self.last_error = "audio queue full"

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            tag, words = item
            try:
                self.play(self.assemble(words), tag)
            except Exception as exc:  # no sound card, missing clip: report, keep serving
                self.last_error = f"audio: {exc}"[:200]
                log.warning("audio failed: %s", exc)
            finally:
                self.done += 1

    def play(self, samples: np.ndarray, tag: str) -> Path | None:
        self.played += 1
        if self.simulate:
            import soundfile as sf

            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.played:05d}-{tag}.wav"
            sf.write(str(path), samples, RATE, subtype="PCM_16")
            for old in sorted(self.out_dir.glob("*.wav"))[:-KEEP_SIM_WAVS]:
                old.unlink(missing_ok=True)  # the simulated speaker keeps only the latest calls
            return path
        import sounddevice as sd

        sd.play(samples, RATE, device=self.cfg.device, blocking=True)
        return None

    def check(self) -> tuple[bool, str]:
        """Self-test: play the chime synchronously."""
        try:
            path = self.play(self.assemble(["chime"]), "selftest")
        except Exception as exc:
            return False, f"{exc}"[:200]
        return True, str(path) if path else "played on the sound card"

    def wait_idle(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while self.done < self.queued and time.monotonic() < end:
            time.sleep(0.02)

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(None)
