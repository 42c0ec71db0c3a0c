"""Generate the voice clips in device/audio/clips/ with espeak-ng's Vietnamese voice.

    .venv/bin/python -m device.audio.build_clips [--voice vi] [--out device/audio/clips]

Clips are 16 kHz mono 16-bit WAV, trimmed of silence; the chime is synthesised (two sine tones).
Nothing is downloaded: espeak-ng (Debian package) does the synthesis.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

RATE = 16000
CLIPS_DIR = Path(__file__).resolve().parent / "clips"
WORDS = {
    "moi_so": "mời số",
    "den_quay_so": "đến quầy số",
    "moi_danh_gia": "mời quý khách đánh giá",
    "luot_phuc_vu_so": "lượt phục vụ số",
    "d0": "không",
    "d1": "một",
    "d2": "hai",
    "d3": "ba",
    "d4": "bốn",
    "d5": "năm",
    "d6": "sáu",
    "d7": "bảy",
    "d8": "tám",
    "d9": "chín",
    "muoi": "mười",
    "muoi_tens": "mươi",
    "mot_tens": "mốt",
    "lam": "lăm",
}


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    import numpy as np

    if rate == RATE:
        return x
    n = int(len(x) * RATE / rate)
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)


def _trim(x: np.ndarray, thresh: float = 0.02) -> np.ndarray:
    import numpy as np

    loud = np.nonzero(np.abs(x) > thresh)[0]
    if len(loud) == 0:
        return x
    pad = int(0.02 * RATE)
    return x[max(0, loud[0] - pad) : loud[-1] + pad]


def synth(text: str, voice: str) -> np.ndarray:
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (apt-get install -y espeak-ng)")
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "out.wav"
        subprocess.run([exe, "-v", voice, "-s", "140", "-w", str(out), text], check=True)
        data, rate = sf.read(str(out), dtype="float32")
    if data.ndim > 1:
        data = data.mean(axis=1)
    return _trim(_resample(data, rate))


def chime() -> np.ndarray:
    import numpy as np

    out = []
    for freq, dur in ((880.0, 0.28), (660.0, 0.45)):
        t = np.arange(int(dur * RATE)) / RATE
        env = np.exp(-3.5 * t / dur) * np.minimum(1, t / 0.01)
        out.append(0.5 * env * np.sin(2 * np.pi * freq * t))
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    import soundfile as sf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voice", default="vi")
    ap.add_argument("--out", type=Path, default=CLIPS_DIR)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, text in WORDS.items():
        path = a.out / f"{name}.wav"
        sf.write(str(path), synth(text, a.voice), RATE, subtype="PCM_16")
        total += path.stat().st_size
    sf.write(str(a.out / "chime.wav"), chime(), RATE, subtype="PCM_16")
    total += (a.out / "chime.wav").stat().st_size
    print(f"wrote {len(WORDS) + 1} clips to {a.out} ({total / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
