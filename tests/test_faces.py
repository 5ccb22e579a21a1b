"""Face detection, tracking and aligned cropping on the real sample media (BlazeFace through MediaPipe)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from streamguard import assets
from streamguard.contracts import FaceBox, Frame, now
from streamguard.faces import BlazeFaceDetector, FaceStage, FaceTracker, aligned_crop, crop_transform, eye_angle, transform_points
from streamguard.ingest.file import read_frames

needs_assets = pytest.mark.skipif(bool(assets.missing()), reason="sample assets missing: run `streamguard assets fetch`")


def load_rgb(name: str) -> np.ndarray:
    bgr = cv2.imread(str(assets.asset_path(f"media/{name}")))
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def within(box: FaceBox, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    return 0 <= box.x0 < box.x1 <= w and 0 <= box.y0 < box.y1 <= h


def eyes_dy(box: FaceBox) -> float:
    assert box.keypoints is not None
    return float(box.keypoints[1, 1] - box.keypoints[0, 1])


@pytest.fixture(scope="module")
def detector() -> Iterator[BlazeFaceDetector]:
    if assets.missing():
        pytest.skip("sample assets missing: run `streamguard assets fetch`")
    with BlazeFaceDetector("short") as det:
        yield det


# --- detector ---


@needs_assets
def test_detects_one_face_in_single_face_photo(detector: BlazeFaceDetector) -> None:
    image = load_rgb("single_face.jpg")
    boxes = detector.detect(image)
    assert len(boxes) == 1
    (box,) = boxes
    assert within(box, image) and box.score > 0.8
    assert box.keypoints is not None and box.keypoints.shape == (6, 2)
    right_eye, left_eye = box.keypoints[0], box.keypoints[1]
    assert box.x0 < right_eye[0] < left_eye[0] < box.x1  # the subject's right eye is on the image's left


@needs_assets
def test_detects_several_faces_in_group_photo(detector: BlazeFaceDetector) -> None:
    image = load_rgb("multi_face.jpg")
    boxes = detector.detect(image)
    assert len(boxes) >= 2
    assert all(within(b, image) for b in boxes)
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)


@needs_assets
def test_full_range_model_finds_all_five_faces_of_group_photo() -> None:
    image = load_rgb("multi_face.jpg")
    with BlazeFaceDetector("full") as full:
        boxes = full.detect(image)
    assert len(boxes) == 5
    assert all(within(b, image) for b in boxes)


@needs_assets
def test_no_face_in_blank_images(detector: BlazeFaceDetector) -> None:
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


@needs_assets
def test_detect_accepts_non_contiguous_views(detector: BlazeFaceDetector) -> None:
    image = load_rgb("single_face.jpg")
    padded = np.zeros((image.shape[0], image.shape[1] + 40, 3), np.uint8)
    padded[:, 20:-20] = image
    (box,) = detector.detect(padded[:, 20:-20])  # a strided view, as a frame slice would be
    (ref,) = detector.detect(image)
    assert abs(box.x0 - ref.x0) < 1 and abs(box.y1 - ref.y1) < 1


@needs_assets
def test_detector_rejects_bad_input_and_use_after_close() -> None:
    with pytest.raises(ValueError, match="unknown BlazeFace model"):
        BlazeFaceDetector("huge")  # type: ignore[arg-type]
    det = BlazeFaceDetector()
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        det.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        det.detect(np.zeros((10, 10, 3), np.float32))
    det.close()
    det.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(np.zeros((10, 10, 3), np.uint8))


# --- tracker ---


def square(x: float, y: float, side: float = 100.0) -> FaceBox:
    return FaceBox(x, y, x + side, y + side, 0.9)


@needs_assets
def test_track_id_stays_stable_over_single_face_video(detector: BlazeFaceDetector) -> None:
    tracker = FaceTracker()
    ids = []
    for frame in itertools.islice(read_frames(assets.asset_path("media/single_face.mp4")), 30):
        tracked = tracker.update(detector.detect(frame.image))
        assert len(tracked) == 1
        ids.append(tracked[0][0])
    assert set(ids) == {1}
    assert tracker.active_tracks == 1


def test_face_back_within_max_missed_keeps_its_id_and_after_it_gets_a_new_one() -> None:
    tracker = FaceTracker(max_missed=3)
    [(first, _)] = tracker.update([square(100, 100)])
    for _ in range(3):
        assert tracker.update([]) == []
    assert tracker.active_tracks == 1
    [(again, _)] = tracker.update([square(104, 102)])
    assert again == first
    for _ in range(4):
        tracker.update([])
    assert tracker.active_tracks == 0
    [(new, _)] = tracker.update([square(104, 102)])
    assert new != first


def test_two_faces_get_two_ids_that_follow_them() -> None:
    tracker = FaceTracker()
    ids = dict((box.x0, tid) for tid, box in tracker.update([square(0, 0), square(300, 0)]))
    assert len(set(ids.values())) == 2
    for step in range(1, 10):
        moved = [square(300 + 5 * step, 0), square(5 * step, 0)]  # order swapped, both moving right
        tracked = tracker.update(moved)
        assert [box for _, box in tracked] == moved  # output keeps the input order
        assert tracked[0][0] == ids[300] and tracked[1][0] == ids[0]
    assert tracker.active_tracks == 2


def test_matching_is_greedy_by_highest_iou() -> None:
    tracker = FaceTracker(iou_threshold=0.3)
    [(tid, _)] = tracker.update([square(0, 0)])
    far, near = square(40, 0), square(10, 0)  # both overlap the track; near overlaps more
    tracked = tracker.update([far, near])
    assert tracked[1][0] == tid
    assert tracked[0][0] not in (tid,)
    assert tracker.update([square(500, 500)])[0][0] not in (tid, tracked[0][0])  # no overlap: new id


def test_tracker_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        FaceTracker(iou_threshold=0.0)
    with pytest.raises(ValueError):
        FaceTracker(max_missed=-1)


# --- aligned crop ---


def two_dots(angle_deg: float, size: int = 400) -> tuple[np.ndarray, FaceBox]:
    """A grey image with two 'eyes' 80 px apart on a line at ``angle_deg`` (image axes), and a box around them."""
    image = np.full((size, size, 3), 90, np.uint8)
    c = np.array([size / 2, size / 2])
    d = 40 * np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    eyes = np.stack([c - d, c + d]).astype(np.float32)
    for x, y in eyes - 0.5:  # pixel-edge coordinates -> cv2's pixel centres
        cv2.circle(image, (round(float(x) * 16), round(float(y) * 16)), 6 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    keypoints = np.concatenate([eyes, np.zeros((4, 2), np.float32) + c.astype(np.float32)])
    return image, FaceBox(c[0] - 80, c[1] - 80, c[0] + 80, c[1] + 80, 1.0, keypoints)


def dot_centres(crop: np.ndarray) -> np.ndarray:
    """Centroids of the two bright blobs, left to right."""
    mask = (crop[..., 0] > 170).astype(np.uint8)
    count, _, _, centroids = cv2.connectedComponentsWithStats(mask)
    assert count == 3  # background + two dots
    return centroids[1:][np.argsort(centroids[1:, 0])] + 0.5


@pytest.mark.parametrize("angle_deg", [0.0, 25.0, -40.0])
def test_aligned_crop_levels_the_eyes(angle_deg: float) -> None:
    image, box = two_dots(angle_deg)
    crop = aligned_crop(image, box, size=128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    left, right = dot_centres(crop)
    assert abs(left[1] - right[1]) < 0.5
    assert abs((left[0] + right[0]) / 2 - 64) < 0.5 and abs(left[1] - 64) < 0.5  # the box centre lands in the middle
    scale = 128 / (1.3 * 160)
    assert abs((right[0] - left[0]) - 80 * scale) < 0.5
    assert box.keypoints is not None
    mapped = transform_points(crop_transform(box, 128, 1.3, eye_angle(box)), box.keypoints[:2])
    np.testing.assert_allclose(mapped, [left, right], atol=0.5)


def test_crop_without_keypoints_is_a_plain_square() -> None:
    image = np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3).astype(np.uint8)
    box = FaceBox(100, 50, 150, 100, 0.9)  # 50 x 50, margin 1.0 -> exactly pixels [100, 150) x [50, 100)
    np.testing.assert_array_equal(aligned_crop(image, box, size=50, margin=1.0), image[50:100, 100:150])


def test_crop_of_boxes_touching_the_frame_edges_replicates_the_border() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    image[:, :, 0] = np.arange(160, dtype=np.uint8)[None, :]  # red grows left to right
    image[:, :, 1] = np.arange(120, dtype=np.uint8)[:, None]  # green grows top to bottom
    for box in (FaceBox(0, 0, 40, 50, 0.9), FaceBox(130, 90, 160, 120, 0.9), FaceBox(0, 0, 160, 120, 0.9)):
        crop = aligned_crop(image, box, size=64)
        assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
        assert crop[..., 0].min() >= 0 and crop[..., 0].max() <= 159
    corner = aligned_crop(image, FaceBox(0, 0, 40, 50, 0.9), size=64)
    assert (corner[:5, :5, :2] == 0).all()  # outside the frame: copies of pixel (0, 0)
    with pytest.raises(ValueError):
        aligned_crop(image, FaceBox(0, 0, 40, 50, 0.9), size=0)


@needs_assets
def test_rotated_photo_is_levelled_and_its_face_found_again(detector: BlazeFaceDetector) -> None:
    image = load_rgb("single_face.jpg")
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    rotated = cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
    (box,) = detector.detect(rotated)
    assert abs(eyes_dy(box)) > 15  # the rotation really tilted the eyes
    (plain,) = detector.detect(aligned_crop(rotated, FaceBox(box.x0, box.y0, box.x1, box.y1, box.score), size=256))
    assert abs(eyes_dy(plain)) > 15
    (levelled,) = detector.detect(aligned_crop(rotated, box, size=256))
    assert abs(eyes_dy(levelled)) < 4


# --- stage ---


@needs_assets
def test_face_stage_tracks_each_stream_apart(detector: BlazeFaceDetector) -> None:
    stage = FaceStage(224, detector)
    frames = list(itertools.islice(read_frames(assets.asset_path("media/single_face.mp4")), 5))
    by_stream: dict[str, set[int]] = {"a": set(), "b": set()}
    for frame in frames:
        for stream_id in ("a", "b"):
            copy = Frame(stream_id, frame.seq, frame.pts, None, now(), frame.image)
            (crop,) = stage.process(copy)
            assert (crop.stream_id, crop.seq, crop.pts) == (stream_id, frame.seq, frame.pts)
            assert crop.crop.shape == (224, 224, 3) and crop.crop.dtype == np.uint8
            assert copy.received_ts <= crop.detected_ts <= now()
            by_stream[stream_id].add(crop.track_id)
    assert len(by_stream["a"]) == len(by_stream["b"]) == 1
    assert by_stream["a"] != by_stream["b"]  # ids are unique across the stage's streams
    assert sorted(stage.streams) == ["a", "b"]
    stage.forget("a")
    assert stage.streams == ["b"]
    empty = Frame("b", 99, None, None, now(), np.zeros((360, 640, 3), np.uint8))
    assert stage.process(empty) == []
