import shutil

import numpy as np
import pytest
import torch

from streamguard.cli import main as cli_main
from streamguard.models import build_detector, variant_names
from streamguard.runtime import BackendUnavailable, ManifestError, create_engine, load_engine
from streamguard.runtime.export import export_engine
from streamguard.runtime.manifest import Manifest

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def random_crops(size: int, n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def fused_torch_probs(model, crops: np.ndarray) -> np.ndarray:
    """The reference: fused fp32 model on crops normalized by hand from the config."""
    config = model.config
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(config.mean).view(1, 3, 1, 1)) / torch.tensor(config.std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x)["prob"].numpy()


@pytest.mark.parametrize("variant", variant_names())
def test_onnxruntime_scores_match_fused_torch_and_load_from_manifest_alone(variant: str, tmp_path) -> None:
    model = build_detector(variant).eval().fuse()
    manifest_path = export_engine(model, "onnx", tmp_path / "export" / f"{variant}.onnx")
    # Move the engine and its manifest elsewhere: the pair must be self-sufficient.
    moved = tmp_path / "moved"
    moved.mkdir()
    for path in (manifest_path, manifest_path.with_suffix(".onnx")):
        shutil.move(path, moved / path.name)
    engine = load_engine(moved / manifest_path.name)
    assert engine.info.detector == variant and engine.info.backend == "onnxruntime"
    crops = random_crops(model.config.input_size)
    out = engine.run(crops)
    np.testing.assert_allclose(out.prob, fused_torch_probs(model, crops), atol=1e-3)
    assert set(out.extras) == set(engine.info.outputs) - {"prob"}
    assert engine.run(crops[:1]).prob.shape == (1,)  # the batch axis is dynamic


def test_torch_backend_matches_fused_model_and_reports_extras() -> None:
    model = build_detector("laa_b0").eval()
    engine = create_engine(model, "torch", "cpu")
    crops = random_crops(224)
    out = engine.run(crops)
    np.testing.assert_allclose(out.prob, fused_torch_probs(model, crops), atol=1e-5)
    assert out.extras["heatmap"].shape == (3, 1, 28, 28)


def test_engine_rejects_wrong_crops_with_a_clear_message() -> None:
    engine = create_engine(build_detector("deepfidelity_s"), "torch", "cpu")
    with pytest.raises(ValueError, match="uint8"):
        engine.run(np.zeros((1, 224, 224, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, 224, 224, 3\)"):
        engine.run(np.zeros((1, 3, 224, 224), dtype=np.uint8))


def test_manifest_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        load_engine(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not a StreamGuard engine manifest"):
        load_engine(tmp_path / "bad.json")
    manifest = Manifest("d", "mlvp", "onnxruntime", "gone.onnx", 224, (0.5,) * 3, (0.5,) * 3, 0.5, ("prob",), 18, None, None)
    manifest.write(tmp_path / "d.json")
    with pytest.raises(ManifestError, match=r"gone\.onnx not found"):
        load_engine(tmp_path / "d.json")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
@pytest.mark.parametrize("backend", ["compiled", "tensorrt"])
def test_gpu_backends_say_why_they_cannot_run_on_cpu(backend: str) -> None:
    with pytest.raises(BackendUnavailable, match=r"CUDA|TensorRT"):
        create_engine(build_detector("deepfidelity_s"), backend)


def test_export_cli_writes_engine_and_manifest(tmp_path, capsys) -> None:
    assert cli_main(["export", "--detector", "deepfidelity_s", "--out", str(tmp_path / "df.onnx")]) == 0
    assert (tmp_path / "df.onnx").is_file()
    assert Manifest.read(tmp_path / "df.json").backend == "onnxruntime"


def test_export_cli_missing_weights_is_one_line_error(tmp_path, capsys) -> None:
    code = cli_main(["export", "--detector", "deepfidelity_s", "--out", str(tmp_path / "x.onnx"), "--weights", str(tmp_path / "no.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("streamguard: error:") and "not found" in err and "Traceback" not in err


@cuda
def test_compiled_backend_matches_eager_fp16() -> None:
    model = build_detector("mlvp_b0").eval()
    eager = create_engine(model, "torch", "cuda")
    compiled = create_engine(model, "compiled", "cuda")
    crops = random_crops(224, n=5)  # padded up to the captured batch of 8
    np.testing.assert_allclose(compiled.run(crops).prob, eager.run(crops).prob, atol=1e-2)
