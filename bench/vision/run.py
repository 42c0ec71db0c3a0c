"""Vision benchmark: our pipeline vs the fer package on the same 640x480 one-face frames, one core.

    python -m bench.vision.run [--frames 200] [--fer-python .buildenv/bin/python] [--no-rss]

Both sides are pinned to one CPU core (sched_setaffinity / taskset) with one inference thread.
Prints figures; asserts nothing (targets: >= 10x faster than fer, <= 5 ms/frame on one core here).
The kiosk part starts a real kiosk (--simulate, folder camera) against a real Mosquitto: its RSS
with vision on/off, and the ticket button's round trip while vision runs flat out during a visit.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from device.vision.classify import crop_face, face_geometry, to_gray
from device.vision.pipeline import FramePipeline, MotionGate

REPO = Path(__file__).resolve().parents[2]
FRAME = REPO / "tests" / "vision" / "data" / "astronaut_640x480.jpg"
DEFAULT_FER_PYTHON = REPO / ".buildenv" / "bin" / "python"  # the venv models/build.py documents
# Pi 4 (Cortex-A72 @ 1.5 GHz, NEON) vs one core of this x86-64 (AVX2/FMA) machine for small float
# CNNs under onnxruntime: assumed 4-7x slower per core (central 5x). Not measured on a Pi here:
# see docs/models.md for how to check it on hardware (hil/).
PI4_FACTOR = (4.0, 5.0, 7.0)


def make_frames(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct 640x480 frames with one face: the committed frame shifted, scaled, relit."""
    base = cv2.imread(str(FRAME), cv2.IMREAD_COLOR)
    rng = np.random.default_rng(seed)
    out = np.empty((n, 480, 640, 3), np.uint8)
    for i in range(n):
        s = rng.uniform(0.95, 1.08)
        dx, dy = rng.uniform(-60, 60), rng.uniform(-30, 30)
        m = np.float32([[s, 0, dx + (1 - s) * 320], [0, s, dy + (1 - s) * 240]])
        f = cv2.warpAffine(base, m, (640, 480), borderMode=cv2.BORDER_REPLICATE)
        out[i] = cv2.convertScaleAbs(f, alpha=rng.uniform(0.9, 1.1), beta=rng.uniform(-10, 10))
    return out


def bench_ours(frames: np.ndarray) -> dict:
    cv2.setNumThreads(1)
    pipe = FramePipeline.from_models_dir(REPO / "models")
    gate = MotionGate()
    for f in frames[:10]:
        pipe.process(f)
    t_all, t_det, t_cls, t_gate, faces = [], [], [], [], 0
    for f in frames:
        t0 = time.perf_counter()
        r = pipe.process(f)
        t_all.append(time.perf_counter() - t0)
        faces += r.face
        t0 = time.perf_counter()
        face = pipe.detector.largest(f)
        t1 = time.perf_counter()
        if face is not None:
            c, side, a = face_geometry(face.box, face.keypoints)
            pipe.classifier.predict(crop_face(to_gray(f), c, side, a))
        t2 = time.perf_counter()
        gate.changed(f)
        t3 = time.perf_counter()
        t_det.append(t1 - t0)
        t_cls.append(t2 - t1)
        t_gate.append(t3 - t2)
    ms = lambda xs: 1000 * float(np.mean(xs))  # noqa: E731
    return {"n": len(frames), "faces_found": faces, "ms_mean": ms(t_all), "ms_best20": best_chunk(t_all),
            "ms_median": 1000 * float(np.median(t_all)), "detect_ms": ms(t_det),
            "crop_classify_ms": ms(t_cls), "gate_ms": ms(t_gate)}


def best_chunk(times: list[float], size: int = 20) -> float:
    """Mean of the fastest run of ``size`` consecutive frames, in ms: the least-contended figure on a
    machine shared with other jobs (report it beside the mean, not instead of it)."""
    chunks = [times[i : i + size] for i in range(0, len(times) - size + 1, size)] or [times]
    return 1000 * min(float(np.mean(c)) for c in chunks)


def bench_fer(frames: np.ndarray, python: Path) -> dict | str:
    if not python.exists():
        return f"unavailable: {python} not found (build venv: see models/requirements-build.txt)"
    buf = io.BytesIO()
    np.save(buf, frames)
    cmd = [str(python), str(Path(__file__).with_name("fer_side.py"))]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(sorted(os.sched_getaffinity(0))[0]), *cmd]
    env = os.environ | {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    proc = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, timeout=1800, env=env)
    if proc.returncode != 0:
        return "unavailable: fer run failed: " + proc.stderr.decode(errors="replace").strip()[-400:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def kiosk_rss() -> dict | str:
    """VmRSS of a real kiosk (--simulate) with the camera on and off, after a visit of ~3 s."""
    import httpx

    from hil.harness.kiosk_proc import KioskProc, write_config
    from hil.harness.mosquitto import Mosquitto

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(workdir=Path(tmp) / "mq").start()
        try:
            for label, camera in (("vision_on", True), ("vision_off", False)):
                # 20 fps with motion_threshold 0: vision works flat out during the visit
                table = {"enabled": camera, "source": f"folder:{FRAME.parent}", "fps": 20,
                         "motion_threshold": 0}
                cfg = write_config(Path(tmp) / f"{label}.toml", camera=table)
                k = KioskProc(cfg, broker.url, Path(tmp) / label).start()
                try:
                    k.press("ticket")
                    k.press("next")
                    time.sleep(1)
                    presses = []
                    for _ in range(40):  # the citizen button while vision runs: HTTP round trip
                        t0 = time.perf_counter()
                        k.press("ticket")
                        presses.append(1000 * (time.perf_counter() - t0))
                        time.sleep(0.05)
                    k.press("next")  # completes the visit: its rating prompt opens
                    k.press("rate_3")
                    status = Path(f"/proc/{k.proc.pid}/status").read_text()
                    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                    out[label] = {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
                                  "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024,
                                  "press_ms_p50": float(np.percentile(presses, 50)),
                                  "press_ms_p95": float(np.percentile(presses, 95))}
                finally:
                    k.terminate()
        except (OSError, RuntimeError, TimeoutError, httpx.HTTPError) as e:
            return f"unavailable: {e}"
        finally:
            broker.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--fer-python", type=Path, default=DEFAULT_FER_PYTHON)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--record", action="store_true", help="store the figures in models/manifest.json")
    args = ap.parse_args(argv)
    core = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {core})
    frames = make_frames(args.frames)
    print(f"frames: {len(frames)} x 640x480, one face each (tests/vision/data/astronaut_640x480.jpg varied);"
          f" pinned to CPU core {core}, 1 inference thread")
    ours = bench_ours(frames)
    print(f"ours  : {ours['ms_mean']:.2f} ms/frame mean ({ours['ms_median']:.2f} median, "
          f"{ours['ms_best20']:.2f} best 20-frame run), faces "
          f"{ours['faces_found']}/{ours['n']}; detect {ours['detect_ms']:.2f} ms, crop+classify "
          f"{ours['crop_classify_ms']:.2f} ms, motion gate {ours['gate_ms']:.3f} ms")
    fer = bench_fer(frames, args.fer_python)
    result = {"ours": ours, "fer": fer}
    if isinstance(fer, dict):
        ratio = fer["ms_mean"] / ours["ms_mean"]
        result["ratio"] = ratio
        print(f"fer   : {fer['ms_mean']:.2f} ms/frame mean ({fer['ms_median']:.2f} median, "
              f"{fer['ms_best20']:.2f} best 20-frame run), faces "
              f"{fer['faces_found']}/{fer['n']}; its Haar cascade alone {fer['haar_ms']:.2f} ms "
              f"(fer {fer['fer_version']}, OpenCV {fer['opencv']})")
        result["ratio_best20"] = fer["ms_best20"] / ours["ms_best20"]
        print(f"ratio : ours is {ratio:.1f}x faster than fer.detect_emotions by the means "
              f"({result['ratio_best20']:.1f}x by the best 20-frame runs; target >= 10x)")
    else:
        print(f"fer   : {fer}")
    print(f"target: <= 5 ms/frame on one core here: mean {ours['ms_mean']:.2f} ms "
          f"({'met' if ours['ms_mean'] <= 5 else 'NOT met'}), best 20-frame run {ours['ms_best20']:.2f} ms "
          f"({'met' if ours['ms_best20'] <= 5 else 'NOT met'}); load average {os.getloadavg()[0]:.1f}")
    lo, mid, hi = (ours["ms_mean"] * f for f in PI4_FACTOR)
    print(f"Pi 4 estimate: ~{mid:.0f} ms/frame on one Cortex-A72 core (range {lo:.0f}-{hi:.0f}), i.e. "
          f"{1000 / mid:.0f} fps max; at the default 4 fps about {4 * mid / 10:.0f}% of one core "
          f"(x86 figure x {PI4_FACTOR[0]:g}-{PI4_FACTOR[2]:g}, assumed per-core ratio; see docs/models.md)")
    if not args.no_rss:
        rss = kiosk_rss()
        result["kiosk_rss"] = rss
        if isinstance(rss, dict):
            on, off = rss["vision_on"], rss["vision_off"]
            print(f"kiosk RSS: vision on {on['rss_mb']:.0f} MB (peak {on['peak_rss_mb']:.0f}), vision off "
                  f"{off['rss_mb']:.0f} MB: vision costs {on['rss_mb'] - off['rss_mb']:.0f} MB")
            print(f"ticket button during a visit (HTTP sim press round trip, 40 presses): vision on 20 fps "
                  f"p50 {on['press_ms_p50']:.1f} ms / p95 {on['press_ms_p95']:.1f} ms; vision off "
                  f"p50 {off['press_ms_p50']:.1f} ms / p95 {off['press_ms_p95']:.1f} ms")
        else:
            print(f"kiosk RSS: {rss}")
    print("JSON " + json.dumps(result))
    if args.record:
        record(result)


def record(result: dict) -> None:
    path = REPO / "models" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    ours, load1 = result["ours"], os.getloadavg()[0]
    common = {"how": "python -m bench.vision.run (one pinned core, 1 thread, 640x480 frames)",
              "load_average_1m": round(load1, 2)}
    manifest["models"]["face_blazeface_short"]["latency"] = {
        "detect_ms_mean": round(ours["detect_ms"], 3), **common}
    manifest["models"]["expression_minixception"]["latency"] = {
        "crop_classify_ms_mean": round(ours["crop_classify_ms"], 3), **common}
    fer = result["fer"]
    manifest["pipeline_benchmark"] = {
        "ours_ms_per_frame_mean": round(ours["ms_mean"], 3),
        "ours_ms_per_frame_median": round(ours["ms_median"], 3),
        "ours_ms_per_frame_best20": round(ours["ms_best20"], 3),
        "fer_ms_per_frame_best20": round(fer["ms_best20"], 3) if isinstance(fer, dict) else None,
        "ratio_best20": round(result["ratio_best20"], 2) if "ratio_best20" in result else None,
        "fer_detect_emotions_ms_per_frame_mean": round(fer["ms_mean"], 3) if isinstance(fer, dict) else fer,
        "ratio": round(result["ratio"], 2) if "ratio" in result else None,
        "kiosk_rss": result.get("kiosk_rss"),
        **common,
    }
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"recorded in {path}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
