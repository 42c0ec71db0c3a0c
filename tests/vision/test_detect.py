"""BlazeFace under onnxruntime on a real face: anchors, decoding, NMS, letterbox undo, crop/align."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from device.vision.blazeface import ssd_anchors, weighted_nms
from device.vision.classify import CLASSES, crop_face, crop_whole, face_geometry

# Where the astronaut's face is in the committed frame (measured once by eye on the image: the
# face spans about x 225-340, y 100-220 of 640x480).
FACE_BOX = (225, 100, 340, 220)


def _inside(box, ref, tol=25):
    return all(abs(a - b) <= tol for a, b in zip(box, ref, strict=True))


def test_anchor_layout_matches_mediapipe_short_range():
    a = ssd_anchors()
    assert a.shape == (896, 2)
    # 16x16 cells x 2 anchors, then 8x8 cells x 6 anchors
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])
    assert np.allclose(a[512], [0.5 / 8, 0.5 / 8]) and np.allclose(a[512:518], a[512])
    assert np.allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_weighted_nms_blends_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    out = weighted_nms(boxes, kps, scores)
    assert len(out) == 2
    blended, _, s = out[0]
    assert s == pytest.approx(0.9)
    assert blended[0] == pytest.approx((0.1 * 0.9 + 0.12 * 0.6) / 1.5)
    assert np.allclose(out[1][0], boxes[2])


def test_detects_the_face_in_a_real_frame(pipeline, face_frame):
    faces = pipeline.detector.detect(face_frame)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.8
    assert _inside(f.box, FACE_BOX), f.box
    (x1, y1, x2, y2), eyes = f.box, f.keypoints[:2]
    assert np.all((eyes[:, 0] > x1) & (eyes[:, 0] < x2) & (eyes[:, 1] > y1) & (eyes[:, 1] < (y1 + y2) / 2))


@pytest.mark.parametrize("dx,dy", [(-150, 0), (180, 40), (0, -60)])
def test_box_follows_a_shifted_face(pipeline, face_frame, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    shifted = cv2.warpAffine(face_frame, m, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    f = pipeline.detector.largest(shifted)
    assert f is not None
    expect = (FACE_BOX[0] + dx, FACE_BOX[1] + dy, FACE_BOX[2] + dx, FACE_BOX[3] + dy)
    assert _inside(f.box, expect), (f.box, expect)


def test_mirrored_and_smaller_faces_are_found(pipeline, face_frame):
    assert pipeline.detector.largest(cv2.flip(face_frame, 1)) is not None
    small = np.full_like(face_frame, 120)
    small[60:420, 80:560] = cv2.resize(face_frame, (480, 360), interpolation=cv2.INTER_AREA)
    f = pipeline.detector.largest(small)
    assert f is not None and 70 < f.width < 110


def test_largest_face_wins(pipeline, face_frame):
    head = face_frame[40:300, 160:400]  # 240x260 around the face
    canvas = np.full((480, 640, 3), 110, np.uint8)
    canvas[0:325, 0:300] = cv2.resize(head, (300, 325), interpolation=cv2.INTER_AREA)
    canvas[200:408, 400:592] = cv2.resize(head, (192, 208), interpolation=cv2.INTER_AREA)
    faces = pipeline.detector.detect(canvas)
    assert len(faces) == 2, [f.box for f in faces]
    big = pipeline.detector.largest(canvas)
    assert big.box[2] < 320  # the bigger face on the left


@pytest.mark.parametrize("kind", ["grey", "noise", "gradient"])
def test_no_face_no_result(pipeline, kind):
    rng = np.random.default_rng(1)
    frame = {
        "grey": np.full((480, 640, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        "gradient": np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 1, 3)),
    }[kind]
    assert pipeline.detector.detect(frame) == []
    r = pipeline.process(frame)
    assert r.face is False and r.probs is None


def test_classifies_the_real_face_as_happy(pipeline, face_frame):
    r = pipeline.process(face_frame)
    assert r.face and r.probs is not None
    assert r.probs.shape == (7,) and r.probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert CLASSES[int(r.probs.argmax())] == "happy"  # she is smiling broadly


def test_strong_roll_is_measured_and_corrected(pipeline, face_frame):
    centre = (282, 160)
    rot = cv2.warpAffine(face_frame, cv2.getRotationMatrix2D(centre, -25, 1.0), (640, 480),
                         borderMode=cv2.BORDER_REPLICATE)
    f0 = pipeline.detector.largest(face_frame)
    f = pipeline.detector.largest(rot)
    assert f is not None
    _, _, a0 = face_geometry(f0.box, f0.keypoints)
    _, _, a = face_geometry(f.box, f.keypoints)
    assert a0 == 0.0  # the upright face's small tilt is left as it is
    assert 15 <= a <= 35  # rotated 25 deg clockwise on screen: the eye line slopes down to the right
    upright = pipeline.face_crop(face_frame, f0).astype(float)
    aligned = pipeline.face_crop(rot, f).astype(float)
    gray = cv2.cvtColor(rot, cv2.COLOR_BGR2GRAY)
    unaligned = crop_face(gray, *face_geometry(f.box, None)[:2]).astype(float)
    assert np.abs(aligned - upright).mean() < np.abs(unaligned - upright).mean()


def test_whole_image_crop_is_a_plain_resize():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    ours = crop_whole(img).astype(int)
    ref = cv2.resize(img, (64, 64), interpolation=cv2.INTER_LINEAR).astype(int)
    assert ours.shape == (64, 64)
    assert np.abs(ours - ref).max() <= 2 and np.abs(ours - ref).mean() < 0.5


def test_motion_gate_skips_unchanged_frames(face_frame):
    from device.vision.pipeline import MotionGate

    gate = MotionGate(threshold=2.0)
    assert gate.changed(face_frame)  # first frame
    noise = np.random.default_rng(0).integers(-2, 3, face_frame.shape)
    noisy = np.clip(face_frame.astype(int) + noise, 0, 255)
    assert not gate.changed(noisy.astype(np.uint8))  # sensor noise is not a change
    moved = np.roll(face_frame, 40, axis=1)
    assert gate.changed(moved)
    assert not gate.changed(moved)
    gate.reset()
    assert gate.changed(moved)
