import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamguard.assets import assets_dir
from training import extract as extract_cli
from training import faces
from training.faces import read_index, sample_indices


@pytest.fixture(scope="module")
def photo() -> Path:
    path = assets_dir() / "media" / "single_face.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `streamguard assets fetch`")
    if importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib is not installed: pip install 'streamguard[train]'")
    try:
        faces.landmark_model_path()
    except faces.LandmarkModelMissing as exc:
        pytest.skip(str(exc))
    return path


def test_sample_indices_are_evenly_spaced() -> None:
    assert sample_indices(100, 5) == [0, 25, 50, 74, 99]
    assert sample_indices(3, 20) == [0, 1, 2]
    assert sample_indices(0, 20) == []


def test_extract_single_face_photo_then_skip_it_on_rerun(photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "faces"
    assert extract_cli.main([str(photo), "--out", str(out), "--size", "160", "--quiet"]) == 0
    (item,) = read_index(out)
    assert item.id == "single_face" and item.identity == "single_face" and item.frames == ["0000"]
    assert item.source == str(photo.resolve()) and item.kind == "image"
    crop = cv2.imread(str(out / "single_face" / "0000.png"))
    landmarks = np.load(out / "single_face" / "0000.npy")
    assert crop is not None and crop.shape == (160, 160, 3)
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float32
    assert np.all((landmarks > 0) & (landmarks < 160))
    # eyes levelled and above the mouth, the face centred in the crop
    right_eye, left_eye, mouth = landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[48:60].mean(0)
    assert abs(right_eye[1] - left_eye[1]) < 3 and right_eye[0] < left_eye[0] and mouth[1] > right_eye[1] + 20
    assert np.all(np.abs(landmarks.mean(0) - 80) < 25)

    class Refuse:
        def __init__(self, *args: object) -> None:
            raise AssertionError("the face aligner must not be built when everything is done")

    monkeypatch.setattr(faces, "FaceAligner", Refuse)
    before = (out / "single_face" / "0000.png").stat().st_mtime_ns
    items = faces.extract([photo], out, faces.ExtractOptions(size=160), identities={"single_face": "person-1"}, progress=False)
    assert [i.identity for i in items] == ["person-1"]
    assert (out / "single_face" / "0000.png").stat().st_mtime_ns == before
    assert json.loads((out / "index.json").read_text())["items"][0]["identity"] == "person-1"


def test_extract_video_takes_evenly_spaced_frames(photo: Path, tmp_path: Path) -> None:
    video = photo.with_name("single_face.mp4")
    if not video.is_file():
        pytest.skip(f"{video} is missing: run `streamguard assets fetch`")
    (item,) = faces.extract([video], tmp_path, faces.ExtractOptions(frames=2, size=128), progress=False)
    assert item.kind == "video" and item.frames == ["0000", "0071"]  # 72 frames: the first and the last
    for name in item.frames:
        crop = cv2.imread(str(tmp_path / "single_face" / f"{name}.png"))
        assert crop is not None and crop.shape == (128, 128, 3)
        assert np.load(tmp_path / "single_face" / f"{name}.npy").shape == (68, 2)
