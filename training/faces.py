"""Face extraction for training: videos and photos -> aligned square face crops + 68 landmarks in crop pixels.

dlib's HOG frontal face detector finds faces and its 68-point shape predictor places landmarks: SBI's masks and
LAA-Net's targets are defined on those 68 points. Crops use the runtime cropper's transform
(``streamguard.faces.crop``: a square of ``margin`` times the face box, eyes levelled) from a box sized like
BlazeFace's, so training crops frame faces as the live pipeline does.

Layout written under ``OUT``: ``<item_id>/<frame:04d>.png`` + ``<frame:04d>.npy`` (68 x 2 float32, crop pixels),
``<item_id>/meta.json`` (written last: its presence marks the item done, which makes extraction resumable), and
``index.json`` listing every finished item with its source and identity.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamguard.contracts import FaceBox
from streamguard.faces.crop import crop_transform, transform_points

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
INDEX_NAME = "index.json"
META_NAME = "meta.json"
RIGHT_EYE = slice(36, 42)  # dlib's 68-point order: the subject's right eye is on the image's left
LEFT_EYE = slice(42, 48)
# A box from the landmarks' extent, grown and raised to about BlazeFace's box (measured on single_face.jpg:
# BlazeFace's side is 1.07x the landmarks' extent, its centre 5% of the side higher), so margin 1.3 means the same.
BOX_SCALE = 1.07
BOX_RAISE = 0.05


class LandmarkModelMissing(FileNotFoundError):
    """The 68-point dlib model is not installed."""


def landmark_model_path() -> Path:
    """The 68-point model inside ``face_recognition_models``, found without importing the package
    (its ``__init__`` imports ``pkg_resources``, which current setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat" if locations else None
    if path is None or not path.is_file():
        raise LandmarkModelMissing("dlib's 68-point landmark model is missing: pip install 'streamguard[train]'")
    return path


@dataclass(frozen=True)
class ExtractOptions:
    frames: int = 20  # frames per video, evenly spaced (MLVP-Net uses 20)
    size: int = 317  # crop side in pixels; larger than the model's input so training can crop at random
    margin: float = 1.3  # crop side / face box side, as the runtime cropper
    detect_side: int = 800  # frames are shrunk to this longest side for detection only (HOG cost grows with area)
    upsample: int = 1  # dlib's detector upsampling: 1 finds faces down to about 40 px
    all_faces: bool = False  # photos: one item per face instead of the largest face only


@dataclass
class Item:
    """One extracted video or photo (or one face of a multi-face photo)."""

    id: str
    source: str
    kind: str  # "video" or "image"
    identity: str
    frames: list[str] = field(default_factory=list)  # frame names, e.g. "0040" for 0040.png / 0040.npy
    missing: int = 0  # sampled frames where no face was found


@dataclass(frozen=True)
class Face:
    crop: np.ndarray  # size x size x 3 uint8 RGB
    landmarks: np.ndarray  # 68 x 2 float32, crop pixels


class FaceAligner:
    """Detect the faces of an RGB image with dlib and return aligned crops with their landmarks."""

    def __init__(self, options: ExtractOptions | None = None) -> None:
        import dlib  # type: ignore[import-untyped]

        self.options = options or ExtractOptions()
        self._detector, self._predictor = _dlib_models()
        self._rectangle = dlib.rectangle

    def landmarks(self, image: np.ndarray) -> list[np.ndarray]:
        """68 x 2 landmark arrays (pixel edge convention, like ``FaceBox``) of every face, largest face first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.options.detect_side / max(height, width))
        small = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
        rects = sorted(self._detector(small, self.options.upsample), key=lambda r: -r.area())
        found = []
        for r in rects:
            full = self._rectangle(*(round(v / scale) for v in (r.left(), r.top(), r.right(), r.bottom())))
            shape = self._predictor(image, full)
            found.append(np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], dtype=np.float32))
        return found

    def faces(self, image: np.ndarray) -> list[Face]:
        """Aligned crops of every face, largest first."""
        return [align_face(image, points, self.options.size, self.options.margin) for points in self.landmarks(image)]


@functools.cache
def _dlib_models() -> tuple[Any, Any]:
    """dlib's detector and the 68-point predictor, loaded once per process (the predictor takes ~2 s)."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


def landmark_box(points: np.ndarray) -> FaceBox:
    """A BlazeFace-sized face box (with eye keypoints for levelling) from 68 landmarks."""
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    side = BOX_SCALE * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - BOX_RAISE * side
    eyes = np.stack([points[RIGHT_EYE].mean(0), points[LEFT_EYE].mean(0)])
    return FaceBox(float(cx - side / 2), float(cy - side / 2), float(cx + side / 2), float(cy + side / 2), 1.0, eyes)


def align_face(image: np.ndarray, points: np.ndarray, size: int, margin: float) -> Face:
    matrix = crop_transform(landmark_box(points), size, margin, _eye_angle(points))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Face(crop, transform_points(matrix, points).astype(np.float32))


def _eye_angle(points: np.ndarray) -> float:
    dx, dy = (points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)).tolist()
    return float(np.arctan2(dy, dx))


def sample_indices(count: int, frames: int) -> list[int]:
    """``frames`` evenly spaced frame indices of a video of ``count`` frames (all of them when it is shorter)."""
    if count <= 0 or frames <= 0:
        return []
    return sorted({round(i) for i in np.linspace(0, count - 1, min(frames, count))})


def read_video_frames(path: Path, frames: int) -> list[tuple[int, np.ndarray]]:
    """(index, RGB frame) for evenly spaced frames, read sequentially (seeking is unreliable in many codecs).
    Containers may over-report their length (no_face.mp4 says 98 frames and holds 95): when the stream ends early,
    the frames are sampled again over the length actually read."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"{path}: cannot open video")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    picked, length = _read_frames(path, sample_indices(count, frames))
    if length < count:
        picked, _ = _read_frames(path, sample_indices(length, frames))
    return picked


def _read_frames(path: Path, indices: Sequence[int]) -> tuple[list[tuple[int, np.ndarray]], int]:
    """The frames at ``indices`` and how many frames were read (all of them when the stream ended early)."""
    capture = cv2.VideoCapture(str(path))
    wanted, picked, index = set(indices), [], 0
    try:
        while wanted and capture.grab():
            if index in wanted:
                wanted.discard(index)
                ok, frame = capture.retrieve()
                if ok:
                    picked.append((index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
            index += 1
    finally:
        capture.release()
    return picked, index if wanted else max(index, max(indices, default=-1) + 1)


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"{path}: cannot read image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def discover(sources: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(item id, path) of every video and photo: a file's id is its stem, a folder's files get their path relative
    to the folder without suffix (so FaceForensics++ / Celeb-DF layouts survive). Files whose ids would collide
    (``a.jpg`` and ``a.mp4``) keep their suffix in the id (``a_jpg``, ``a_mp4``)."""
    pairs: list[tuple[str, Path]] = []
    for source in map(Path, sources):
        if source.is_file():
            pairs.append((source.stem, source.resolve()))
        elif source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES and p.is_file())
            pairs.extend((p.relative_to(source).with_suffix("").as_posix(), p.resolve()) for p in files)
        else:
            raise FileNotFoundError(f"{source}: no such file or folder")
    paths_of: dict[str, set[Path]] = {}
    for item_id, path in pairs:
        paths_of.setdefault(item_id, set()).add(path)
    found: dict[str, Path] = {}
    for item_id, path in pairs:
        unique = item_id if len(paths_of[item_id]) == 1 else f"{item_id}_{path.suffix.lower().lstrip('.')}"
        if unique in found and found[unique] != path:
            raise ValueError(f"two sources map to item id {unique!r}: {found[unique]} and {path}")
        found[unique] = path
    return sorted(found.items())


def extract(
    sources: Sequence[str | Path],
    out: str | Path,
    options: ExtractOptions | None = None,
    identities: Mapping[str, str] | None = None,
    progress: bool = True,
) -> list[Item]:
    """Extract every video / photo under ``sources`` into ``out``; items already done are skipped. Returns the index."""
    from tqdm import tqdm

    options = options or ExtractOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    identities = identities or {}
    aligner: FaceAligner | None = None  # loading the predictor takes ~2 s: only when something is left to do
    for item_id, path in tqdm(discover(sources), desc="extract", unit="item", disable=not progress):
        identity = identities.get(item_id, item_id)
        if any(m.source == str(path) for m in _metas(out, item_id)):
            continue  # done in an earlier run (identity mappings are applied again by write_index)
        aligner = aligner or FaceAligner(options)
        for item in _extract_one(aligner, item_id, path, identity, out):
            _write_meta(out, item)
    return write_index(out, identities)


def _extract_one(aligner: FaceAligner, item_id: str, path: Path, identity: str, out: Path) -> list[Item]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        item = Item(item_id, str(path), "video", identity)
        for index, frame in read_video_frames(path, aligner.options.frames):
            faces = aligner.faces(frame)
            if faces:
                item.frames.append(_save_face(out / item_id, f"{index:04d}", faces[0]))
            else:
                item.missing += 1
        return [item]
    faces = aligner.faces(read_image(path))
    if not aligner.options.all_faces or len(faces) <= 1:
        item = Item(item_id, str(path), "image", identity, missing=int(not faces))
        if faces:
            item.frames.append(_save_face(out / item_id, "0000", faces[0]))
        return [item]
    items = []
    for k, face in enumerate(faces):
        sub_id = f"{item_id}_face{k}"
        items.append(Item(sub_id, str(path), "image", f"{identity}_face{k}", [_save_face(out / sub_id, "0000", face)]))
    return items


def _save_face(folder: Path, name: str, face: Face) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{folder / name}.png: cannot write")
    np.save(folder / f"{name}.npy", face.landmarks)
    return name


def write_item(out: str | Path, item_id: str, faces: Sequence[Face], identity: str | None = None, source: str = "") -> Item:
    """Store ready-made faces as one finished item (frames 0000, 0001, ...): for crops made without dlib (drawn
    faces in tests, crops with landmarks from another tool). Call ``write_index`` afterwards."""
    out = Path(out)
    item = Item(item_id, source or item_id, "image" if len(faces) == 1 else "video", identity or item_id)
    item.frames = [_save_face(out / item_id, f"{k:04d}", face) for k, face in enumerate(faces)]
    _write_meta(out, item)
    return item


def _write_meta(out: Path, item: Item) -> None:
    folder = out / item.id
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{META_NAME}.tmp"
    tmp.write_text(json.dumps(asdict(item), indent=1))
    tmp.replace(folder / META_NAME)


def _metas(out: Path, item_id: str) -> list[Item]:
    """Finished items of a source id: the item itself, or its per-face items for a multi-face photo."""
    paths = [out / item_id / META_NAME, *sorted((out / item_id).parent.glob(f"{Path(item_id).name}_face*/{META_NAME}"))]
    return [Item(**json.loads(p.read_text())) for p in paths if p.is_file()]


def write_index(out: str | Path, identities: Mapping[str, str] | None = None) -> list[Item]:
    """Rebuild ``index.json`` from the finished items under ``out`` (items without any face are left out)."""
    out = Path(out)
    items = sorted((Item(**json.loads(p.read_text())) for p in out.rglob(META_NAME)), key=lambda i: i.id)
    for item in items:
        item.identity = (identities or {}).get(item.id, item.identity)
    kept = [i for i in items if i.frames]
    payload: dict[str, Any] = {"version": 1, "items": [asdict(i) for i in kept]}
    tmp = out / f"{INDEX_NAME}.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out / INDEX_NAME)
    return kept


def read_index(root: str | Path) -> list[Item]:
    path = Path(root) / INDEX_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m training.extract SRC... --out {root}` first")
    return [Item(**entry) for entry in json.loads(path.read_text())["items"]]
