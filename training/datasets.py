"""Datasets over extracted face crops (``training.faces`` layout) and identity-disjoint splits.

- ``RealFaceDataset``: real faces only; every face appears once as itself and once as a synthetic fake (SBI, or
  BI with another identity as donor), so each epoch is exactly 50/50 and carries blend masks for LAA-Net's targets.
- ``LabeledFaceDataset``: frames with dataset labels (FaceForensics++, Celeb-DF); fakes have no blend mask, so their
  map targets are marked invalid and the map losses skip them.
- ``faceforensics_frames`` / ``celebdf_frames``: those datasets' directory layouts, as extracted.
- ``split_by_identity``: train / val / test by video and identity, never by frame.

Randomness comes from ``numpy.random.default_rng((seed, epoch, index))``: a sample depends only on those three, so
results do not depend on the number of loader workers and a resumed run sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from streamguard.models.config import DetectorConfig
from training.augment import crop_resize, photometric, random_square
from training.faces import read_image, read_index
from training.sbi import BlendOptions, blend_images, choose_donor, self_blend
from training.targets import fidelity_target, heatmap_size, laa_targets, real_laa_targets

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"


@dataclass(frozen=True)
class FaceFrame:
    """One extracted face crop and what is known about it."""

    image: Path
    landmarks: Path | None
    video: str  # the extracted item id (video or photo)
    identity: str  # whose face it is (the target's, for a face swap)
    label: int = 0  # 0 real, 1 fake
    source_identity: str | None = None  # the face swapped in, for dataset fakes

    def load(self) -> tuple[np.ndarray, np.ndarray | None]:
        landmarks = np.load(self.landmarks) if self.landmarks is not None and self.landmarks.is_file() else None
        return read_image(self.image), landmarks


def extracted_frames(root: str | Path, label: int = 0) -> list[FaceFrame]:
    """Every face crop listed in ``root/index.json``."""
    root = Path(root)
    return [
        FaceFrame(root / item.id / f"{name}.png", root / item.id / f"{name}.npy", item.id, item.identity, label)
        for item in read_index(root)
        for name in item.frames
    ]


def to_tensor(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """HxWx3 uint8 RGB -> normalized float32 CHW, as ``Detector.prepare`` does at run time."""
    x = image.astype(np.float32) / 255
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


class _FaceSamples(Dataset[dict[str, Any]]):
    """Shared tail: crop/flip/colour augmentation, targets, normalization."""

    def __init__(self, config: DetectorConfig, train: bool, seed: int) -> None:
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.size = config.input_size
        self.map_size = heatmap_size(config.input_size)

    def set_epoch(self, epoch: int) -> None:
        """New random draws each epoch (training); evaluation keeps epoch 0, so its fakes never change."""
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch if self.train else 0, index))

    def finish(
        self, image: np.ndarray, mask: np.ndarray | None, label: int, video: str, rng: np.random.Generator, maps_valid: bool = True
    ) -> dict[str, Any]:
        side = image.shape[0]
        window = random_square(side, rng) if self.train else (0, 0, side)
        image = crop_resize(image, window, self.size)
        if mask is not None:
            mask = crop_resize(mask, window, self.size, cv2.INTER_LINEAR)
        if self.train and rng.random() < 0.5:
            image = image[:, ::-1].copy()
            mask = None if mask is None else mask[:, ::-1].copy()
        if self.train:
            image = photometric(image, rng)
        targets = laa_targets(mask, self.map_size, rng) if label and maps_valid else real_laa_targets(self.map_size)
        small_mask: np.ndarray = np.zeros((self.map_size, self.map_size), np.float32)
        if mask is not None:
            small_mask = cv2.resize(mask, (self.map_size, self.map_size), interpolation=cv2.INTER_AREA)
        return {
            "image": to_tensor(image, self.config.mean, self.config.std),
            "label": torch.tensor(float(label)),
            "mask": torch.from_numpy(small_mask)[None],
            "heatmap": torch.from_numpy(targets.heatmap)[None],
            "consistency": torch.from_numpy(targets.consistency)[None],
            "fidelity": torch.tensor(fidelity_target(image, bool(label)), dtype=torch.float32),
            "maps_valid": torch.tensor(float(maps_valid)),
            "video": video,
        }


class RealFaceDataset(_FaceSamples):
    """Real faces -> 50/50 real and synthetic-fake samples: index ``2k`` is face ``k`` as itself, ``2k + 1`` its fake
    (SBI, or BI with probability ``bi_fraction`` when there is a second identity). Fakes get the video id
    ``<video>#fake`` so video-level metrics treat them as their own video."""

    def __init__(
        self,
        frames: Sequence[FaceFrame],
        config: DetectorConfig,
        train: bool = True,
        bi_fraction: float = 0.0,
        seed: int = 0,
        blend: BlendOptions | None = None,
    ) -> None:
        super().__init__(config, train, seed)
        missing = [f.image for f in frames if f.landmarks is None]
        if missing:
            raise ValueError(f"{len(missing)} frames have no landmarks (e.g. {missing[0]}): self-blending needs them")
        self.frames = list(frames)
        self.bi_fraction = bi_fraction
        self.blend = blend or BlendOptions()
        self.identities = [f.identity for f in self.frames]
        self.can_bi = len(set(self.identities)) > 1

    @classmethod
    def from_folder(cls, root: str | Path, config: DetectorConfig, **kwargs: Any) -> RealFaceDataset:
        """All faces of an extracted folder (``python -m training.extract``)."""
        return cls(extracted_frames(root), config, **kwargs)

    def __len__(self) -> int:
        return 2 * len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.rng(index)
        frame = self.frames[index // 2]
        image, landmarks = frame.load()
        if index % 2 == 0:
            return self.finish(image, None, 0, frame.video, rng)
        assert landmarks is not None
        if self.can_bi and rng.random() < self.bi_fraction:
            donor = self.frames[choose_donor(self.identities, frame.identity, rng)]
            donor_image, donor_landmarks = donor.load()  # any crop size: BI warps it onto the target's landmarks
            assert donor_landmarks is not None
            fake, mask = blend_images(image, landmarks, donor_image, donor_landmarks, rng, self.blend)
        else:
            fake, mask = self_blend(image, landmarks, rng, self.blend)
        return self.finish(fake, mask, 1, f"{frame.video}#fake", rng)


class LabeledFaceDataset(_FaceSamples):
    """Frames with dataset labels. Fakes carry no blend mask: their heatmap/consistency targets are invalid."""

    def __init__(self, frames: Sequence[FaceFrame], config: DetectorConfig, train: bool = False, seed: int = 0) -> None:
        super().__init__(config, train, seed)
        self.frames = list(frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        frame = self.frames[index]
        image, _ = frame.load()
        return self.finish(image, None, frame.label, frame.video, self.rng(index), maps_valid=not frame.label)


def faceforensics_frames(root: str | Path, methods: Sequence[str] = FFPP_METHODS, compression: str = "c23") -> list[FaceFrame]:
    """FaceForensics++ extracted from its root: ``original_sequences/youtube/<c>/videos/000`` (real, identity 000)
    and ``manipulated_sequences/<method>/<c>/videos/000_003`` (fake: target 000, source 003)."""
    real = re.compile(rf"(?:^|/)original_sequences/youtube/{re.escape(compression)}/videos/(\d+)$")
    fake = re.compile(rf"(?:^|/)manipulated_sequences/([^/]+)/{re.escape(compression)}/videos/(\d+)_(\d+)$")
    out = []
    for frame in extracted_frames(root):
        if m := real.search(frame.video):
            out.append(_relabel(frame, m[1], 0, None))
        elif (m := fake.search(frame.video)) and m[1] in methods:
            out.append(_relabel(frame, m[2], 1, m[3]))
    return out


def faceforensics_official_split(frames: Sequence[FaceFrame], pairs: Sequence[Sequence[str]]) -> list[FaceFrame]:
    """Frames of the official split file's video pairs (``train.json`` / ``val.json`` / ``test.json``: [["071", "054"], ...])."""
    ids = {str(v) for pair in pairs for v in pair}
    return [f for f in frames if f.identity in ids and (f.source_identity is None or f.source_identity in ids)]


def celebdf_frames(root: str | Path, split: str = "all", testing_list: str | Path | None = None) -> list[FaceFrame]:
    """Celeb-DF (v2) extracted from its root: ``Celeb-real/id0_0000`` (real, identity id0), ``YouTube-real/00000``
    (real, its own identity), ``Celeb-synthesis/id0_id16_0000`` (fake: target id0, source id16). ``split``: "test" =
    the videos in ``List_of_testing_videos.txt`` (looked for in ``root`` unless given), "train" = the others, "all"."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be all, train or test, got {split!r}")
    pattern = re.compile(r"(?:^|/)(Celeb-real|YouTube-real|Celeb-synthesis)/([^/]+)$")
    test: set[str] = set()
    if split != "all":
        path = Path(testing_list) if testing_list else Path(root) / CELEBDF_TEST_LIST
        test = {line.split()[-1].rsplit(".", 1)[0] for line in path.read_text().splitlines() if line.strip()}
    out = []
    for frame in extracted_frames(root):
        m = pattern.search(frame.video)
        if not m:
            continue
        folder, name = m[1], m[2]
        if split != "all" and ((f"{folder}/{name}" in test) != (split == "test")):
            continue
        if folder == "Celeb-synthesis":
            target, source = name.split("_")[:2]
            out.append(_relabel(frame, target, 1, source))
        else:
            out.append(_relabel(frame, name.split("_")[0] if folder == "Celeb-real" else f"yt{name}", 0, None))
    return out


def _relabel(frame: FaceFrame, identity: str, label: int, source: str | None) -> FaceFrame:
    return FaceFrame(frame.image, frame.landmarks, frame.video, identity, label, source)


class _HasIdentity(Protocol):
    @property
    def video(self) -> str: ...

    @property
    def identity(self) -> str: ...


T = TypeVar("T", bound=_HasIdentity)


def split_by_identity(
    items: Sequence[T], val_fraction: float, test_fraction: float = 0.0, seed: int = 0
) -> tuple[list[T], list[T], list[T]]:
    """(train, val, test) such that no video and no identity (target or swapped-in source) is in two splits.

    Items sharing a video or an identity form one group (union-find); groups are shuffled with ``seed`` and dealt to
    test, then val, while that brings each closer to its fraction of the items; the rest is train. A split with a fraction above 0
    gets at least one group as long as train keeps one too."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"fractions must be in [0, 1) with a sum below 1, got val {val_fraction}, test {test_fraction}")
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for item in items:
        keys = [f"video:{item.video}", f"id:{item.identity}"]
        if source := getattr(item, "source_identity", None):
            keys.append(f"id:{source}")
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(find(f"video:{item.video}"), []).append(i)
    ordered = sorted(groups.values(), key=lambda rows: min(items[r].video for r in rows))
    random.Random(seed).shuffle(ordered)
    total = len(items)
    buckets: list[list[int]] = [[], [], []]  # test, val, train
    remaining = list(ordered)
    for bucket, fraction in ((buckets[0], test_fraction), (buckets[1], val_fraction)):
        goal = fraction * total
        # take the next group while it brings the split closer to its share (always one when the share is above 0)
        while fraction > 0 and len(remaining) > 1 and (not bucket or abs(len(bucket) + len(remaining[0]) - goal) < abs(len(bucket) - goal)):
            bucket.extend(remaining.pop(0))
    buckets[2] = [r for rows in remaining for r in rows]
    test, val, train = ([items[r] for r in sorted(rows)] for rows in buckets)
    return train, val, test


def worker_init(_: int) -> None:
    """DataLoader workers: one thread each for OpenCV and torch, so workers do not oversubscribe the cores."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
