"""Camera sources: folder, video file, and clear 'absent' errors for missing devices."""

from __future__ import annotations

import importlib.util
import shutil

import cv2
import numpy as np
import pytest

from device.vision.camera import (
    CameraUnavailable,
    FolderSource,
    OpenCVSource,
    Picamera2Source,
    VideoFileSource,
    make_source,
)
from tests.vision.conftest import FRAME


def test_folder_source_loops_in_name_order(tmp_path):
    for name, shade in (("b.png", 200), ("a.png", 50)):
        cv2.imwrite(str(tmp_path / name), np.full((48, 64, 3), shade, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    src = make_source(f"folder:{tmp_path}")
    assert isinstance(src, FolderSource)
    src.open()
    means = [int(src.read().mean()) for _ in range(4)]
    src.close()
    assert means == [50, 200, 50, 200]


def test_video_source_reads_and_loops(tmp_path, face_frame, pipeline):
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    if not w.isOpened():
        pytest.fail("this OpenCV build cannot write MJPG/AVI: it has no video I/O, so `video:` sources "
                    "would not work either (install opencv-python-headless from PyPI)")
    for _ in range(3):
        w.write(face_frame)
    w.release()
    src = make_source(f"video:{path}")
    assert isinstance(src, VideoFileSource)
    src.open()
    frames = [src.read() for _ in range(5)]  # 3 frames, then it loops
    src.close()
    assert all(f is not None and f.shape == (480, 640, 3) for f in frames)
    assert pipeline.process(frames[4]).face


def test_missing_sources_are_camera_unavailable(tmp_path):
    with pytest.raises(CameraUnavailable, match="not found"):
        FolderSource(tmp_path / "none").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraUnavailable, match="no images"):
        FolderSource(tmp_path / "empty").open()
    with pytest.raises(CameraUnavailable, match="not found"):
        VideoFileSource(tmp_path / "none.mp4").open()
    with pytest.raises(CameraUnavailable, match="opencv:/dev/video-none"):
        OpenCVSource("/dev/video-none").open()
    if importlib.util.find_spec("picamera2") is None:
        with pytest.raises(CameraUnavailable, match="picamera2 is not installed"):
            Picamera2Source().open()


def test_unknown_source_kind():
    with pytest.raises(ValueError, match="unknown camera source"):
        make_source("usb:1")


def test_frame_file_is_only_read(tmp_path):
    d = tmp_path / "cam"
    d.mkdir()
    shutil.copy(FRAME, d / "f.jpg")
    before = sorted(p.name for p in d.iterdir())
    src = FolderSource(d)
    src.open()
    for _ in range(3):
        src.read()
    src.close()
    assert sorted(p.name for p in d.iterdir()) == before


def test_camera_check_cli_pass_and_fail(tmp_path):
    import subprocess
    import sys

    from tests.vision.conftest import REPO

    ok = subprocess.run([sys.executable, "-m", "device.vision.check", "--source", f"folder:{FRAME.parent}",
                         "--frames", "3"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "ĐẠT / PASS" in ok.stdout and "face in 3/3 frames" in ok.stdout
    blank = tmp_path / "blank"
    blank.mkdir()
    cv2.imwrite(str(blank / "wall.png"), np.full((480, 640, 3), 90, np.uint8))
    bad = subprocess.run([sys.executable, "-m", "device.vision.check", "--source", f"folder:{blank}",
                          "--frames", "3"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "no face seen" in bad.stdout
    gone = subprocess.run([sys.executable, "-m", "device.vision.check", "--source", "folder:/nonexistent"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert gone.returncode == 1 and "[LỖI] camera" in gone.stdout
