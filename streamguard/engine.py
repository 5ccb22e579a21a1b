"""The engine a service or scan uses: an exported manifest, or the named detector exported once and cached."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

from streamguard import __version__
from streamguard.assets import assets_dir
from streamguard.config import DetectorSettings
from streamguard.models import DetectorModel, build_detector
from streamguard.runtime import Detector, create_engine, load_engine
from streamguard.runtime.export import export_engine
from streamguard.runtime.manifest import sha256_of

log = logging.getLogger("streamguard.engine")


def open_engine(settings: DetectorSettings) -> Detector:
    if settings.engine is not None:
        engine = load_engine(settings.engine)
    else:
        overrides = {"weights": str(settings.weights.resolve())} if settings.weights else {}
        model = build_detector(settings.name, **overrides)
        if not model.config.weights:
            log.warning("detector %s has no trained weights: its scores carry no meaning (see README, Training)", settings.name)
        if settings.backend == "onnxruntime":
            engine = load_engine(_cached_onnx(model))
        else:
            engine = create_engine(model, settings.backend, settings.device)
    if settings.threshold is not None:
        engine.info = dataclasses.replace(engine.info, threshold=settings.threshold)
    return engine


def _cached_onnx(model: DetectorModel) -> Path:
    """Export once per (StreamGuard version, detector, weights); later starts load the cached file in ~1 s."""
    config = model.config
    weights = sha256_of(config.resolve(config.weights)) if config.weights else "-"
    key = hashlib.sha256(f"{__version__}|{config.name}|{weights}".encode()).hexdigest()[:12]
    manifest = assets_dir() / "engines" / f"{config.name}-{key}.json"
    if not manifest.is_file():
        log.info("exporting %s to ONNX once (cached in %s)", config.name, manifest.parent)
        export_engine(model, "onnx", manifest.with_suffix(".onnx"))
    return manifest
