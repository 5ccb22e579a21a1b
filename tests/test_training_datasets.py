from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from streamguard.models import load_config
from training.datasets import (
    LabeledFaceDataset,
    RealFaceDataset,
    celebdf_frames,
    extracted_frames,
    faceforensics_frames,
    split_by_identity,
)
from training.faces import Face, write_index, write_item
from training.synthetic import synthetic_face


@dataclass(frozen=True)
class Clip:
    video: str
    identity: str
    source_identity: str | None = None


def make_extracted(root: Path, ids: list[str], size: int = 96) -> Path:
    for k, item_id in enumerate(ids):
        image, landmarks = synthetic_face(size, seed=k)
        write_item(root, item_id, [Face(image, landmarks)])
    write_index(root)
    return root


def test_split_by_identity_never_shares_a_video_or_an_identity() -> None:
    items = [Clip(f"v{v}", f"p{v % 7}") for v in range(30) for _ in range(5)]  # 5 frames per video, people in many videos
    items += [Clip(f"swap{a}_{b}", f"q{a}", f"q{b}") for a, b in ((0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4))]
    train, val, test = split_by_identity(items, 0.2, 0.2, seed=3)
    assert len(train) + len(val) + len(test) == len(items)
    assert val and test and train
    splits = [train, val, test]
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not {x.video for x in a} & {x.video for x in b}
            ids_a = {x.identity for x in a} | {x.source_identity for x in a if x.source_identity}
            ids_b = {x.identity for x in b} | {x.source_identity for x in b if x.source_identity}
            assert not ids_a & ids_b
    assert split_by_identity(items, 0.2, 0.2, seed=3) == (train, val, test)


def test_split_by_identity_keeps_training_data_with_few_identities() -> None:
    items = [Clip("a", "a"), Clip("b", "b")]
    train, val, test = split_by_identity(items, 0.5, 0.0, seed=0)
    assert len(train) == 1 and len(val) == 1 and not test
    with pytest.raises(ValueError):
        split_by_identity(items, 0.6, 0.5)


def test_real_face_dataset_gives_half_fakes_with_targets_at_input_over_8(tmp_path: Path) -> None:
    root = make_extracted(tmp_path, ["alice", "bob"])
    config = load_config("laa_b0")
    dataset = RealFaceDataset(extracted_frames(root), config, train=True, bi_fraction=0.5, seed=1)
    assert len(dataset) == 4
    samples = [dataset[i] for i in range(len(dataset))]
    assert [float(s["label"]) for s in samples] == [0.0, 1.0, 0.0, 1.0]
    for s in samples:
        assert s["image"].shape == (3, 224, 224) and s["image"].dtype == torch.float32
        for key in ("mask", "heatmap", "consistency"):
            assert s[key].shape == (1, 28, 28)
        fid = float(s["fidelity"])
        assert (0.6 <= fid <= 1.0) if s["label"] == 0 else (0.0 <= fid <= 0.4)
    real, fake = samples[0], samples[1]
    assert torch.all(real["heatmap"] == 0) and torch.all(real["consistency"] == 1) and torch.all(real["mask"] == 0)
    assert fake["mask"].max() > 0.2 and fake["heatmap"].max() == pytest.approx(1.0)
    assert fake["video"] == f"{real['video']}#fake"
    # the same (seed, epoch, index) gives the same sample; another epoch gives another draw
    assert torch.equal(dataset[1]["image"], fake["image"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[1]["image"], fake["image"])


def test_dataset_layouts_assign_labels_and_identities(tmp_path: Path) -> None:
    ff = make_extracted(
        tmp_path / "ff",
        [
            "original_sequences/youtube/c23/videos/000",
            "original_sequences/youtube/c23/videos/003",
            "manipulated_sequences/Deepfakes/c23/videos/000_003",
            "manipulated_sequences/FaceShifter/c23/videos/000_003",
            "manipulated_sequences/Deepfakes/c40/videos/003_000",
        ],
    )
    frames = faceforensics_frames(ff)
    assert sorted((f.identity, f.label, f.source_identity) for f in frames) == [("000", 0, None), ("000", 1, "003"), ("003", 0, None)]
    cdf = make_extracted(tmp_path / "cdf", ["Celeb-real/id0_0000", "YouTube-real/00170", "Celeb-synthesis/id0_id16_0003"])
    (cdf / "List_of_testing_videos.txt").write_text("1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id16_0003.mp4\n")
    test = celebdf_frames(cdf, split="test")
    assert sorted((f.identity, f.label, f.source_identity) for f in test) == [("id0", 1, "id16"), ("yt00170", 0, None)]
    assert [(f.identity, f.label) for f in celebdf_frames(cdf, split="train")] == [("id0", 0)]
    labeled = LabeledFaceDataset(test, load_config("mlvp_lite0"))
    sample = next(labeled[i] for i in range(len(labeled)) if test[i].label == 1)
    assert float(sample["maps_valid"]) == 0.0 and float(sample["label"]) == 1.0
    assert sample["image"].shape == (3, 224, 224) and bool(torch.isfinite(sample["image"]).all())
