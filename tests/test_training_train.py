import csv
import json
from pathlib import Path

import pytest
import torch

from streamguard.models import build_detector, load_config
from training import evaluate, train
from training.datasets import extracted_frames
from training.faces import Face, write_index, write_item
from training.synthetic import synthetic_face

ARGS = ["--detector", "mlvp_lite0", "--batch", "2", "--max-steps-per-epoch", "2", "--workers", "0", "--quiet"]
OVERRIDES = ["--set", "input_size=128"]  # smaller than the shipped 224 only to keep the test fast


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    for k, person in enumerate(("ann", "ben", "cid")):
        write_item(root, person, [Face(*synthetic_face(144, seed=k))])
    write_index(root)
    return root


def read_log(run: Path) -> list[dict[str, str]]:
    with (run / "log.csv").open() as f:
        return list(csv.DictReader(f))


def test_train_writes_checkpoints_log_and_weights_then_resumes(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = [*ARGS, "--data", str(data), "--out", str(run), "--val-fraction", "0.34", *OVERRIDES]
    assert train.main([*common, "--epochs", "2"]) == 0
    for name in ("last.pt", "best.pt", "log.csv", "weights.safetensors", "run.json"):
        assert (run / name).is_file(), name
    rows = read_log(run)
    assert [r["epoch"] for r in rows] == ["1", "2"] and [r["step"] for r in rows] == ["2", "4"]
    assert float(rows[1]["lr"]) == pytest.approx(float(rows[0]["lr"]) / 2)  # halved each epoch
    assert float(rows[0]["images_per_s"]) > 0 and 0 <= float(rows[0]["val_auc"]) <= 1
    model = build_detector("mlvp_lite0", input_size=128, weights=str(run / "weights.safetensors"))  # keys match exactly
    best = torch.load(run / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())

    assert train.main([*common, "--epochs", "3", "--resume"]) == 0
    rows = read_log(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and rows[2]["step"] == "6"
    state = torch.load(run / "last.pt", weights_only=False)
    assert state["epoch"] == 2 and state["step"] == 6
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4 / 8)

    out = tmp_path / "eval"
    weights = str(run / "weights.safetensors")
    argv = ["--detector", "mlvp_lite0", "--weights", weights, "--data", str(data), "--workers", "0", *OVERRIDES]
    assert evaluate.main([*argv, "--json", str(out / "m.json"), "--roc", str(out / "roc.png")]) == 0
    metrics = json.loads((out / "m.json").read_text())
    assert metrics["frame"]["n"] == 9 and metrics["frame"]["fakes"] == 6  # 3 reals, 3 SBI, 3 BI
    assert metrics["video"]["n"] == 9  # per person: real, SBI and BI "videos"
    assert (out / "roc.png").stat().st_size > 0


def test_eval_set_is_deterministic(data: Path) -> None:
    config = load_config("mlvp_lite0", input_size=64)
    frames = extracted_frames(data)
    a, b = evaluate.build_eval_set(frames, config), evaluate.build_eval_set(frames, config)
    assert len(a) == 9  # type: ignore[arg-type]
    for i in (0, 4, 7):
        assert torch.equal(a[i]["image"], b[i]["image"]) and a[i]["video"] == b[i]["video"]
    assert [float(a[i]["label"]) for i in range(9)] == [0.0] * 3 + [1.0] * 6
    assert {a[i]["video"].split("#")[-1] for i in range(3, 9)} == {"sbi", "bi"}


def test_train_cli_reports_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main([*ARGS, "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")]) == 1
    assert "index.json is missing" in capsys.readouterr().err
