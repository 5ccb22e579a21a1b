"""Service configuration: one YAML file, validated by typed models; unknown keys are errors naming their path."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streamguard.contracts import Level
from streamguard.models.config import ConfigError  # one error type for every config, detector or service

__all__ = ["Config", "ConfigError", "load_config", "parse_config"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSettings(Section):
    name: str = Field("mlvp_lite0", description="detector variant (see `streamguard models`)")
    engine: Path | None = Field(None, description="exported engine manifest (.json); default: export `name` once and cache it")
    backend: Literal["onnxruntime", "torch", "compiled", "tensorrt"] = Field("onnxruntime", description="engine backend")
    device: str = Field("cpu", description="cpu or cuda[:N] for the torch / compiled backends")
    weights: Path | None = Field(None, description="detector weights overriding the variant's")
    threshold: float | None = Field(None, ge=0, le=1, description="fake probability for a frame to count as fake; default: the model's")


class SchedulerSettings(Section):
    max_batch: int = Field(8, ge=1, le=1024, description="crops per engine call")
    max_delay_ms: float = Field(15.0, ge=0, le=1000, description="longest wait for a batch to fill")
    stream_fps: float = Field(10.0, gt=0, le=240, description="frames per second processed per stream; the rest are skipped")
    max_pending_per_track: int = Field(2, ge=1, le=64, description="queued crops per face; older ones are dropped")


class SmoothingSettings(Section):
    method: Literal["ema", "median"] = "ema"
    alpha: float = Field(0.3, gt=0, le=1, description="EMA weight of the newest frame")
    window: int = Field(9, ge=1, le=300, description="frames in the median window")
    suspicious_on: float = Field(0.5, ge=0, le=1, description="smoothed score that raises clear -> suspicious")
    alert_on: float = Field(0.75, ge=0, le=1, description="smoothed score that raises suspicious -> alert")
    hysteresis: float = Field(0.1, ge=0, le=0.5, description="how far below a raise threshold the score must fall to lower the level")
    min_frames: int = Field(3, ge=1, description="frames a track needs before it can leave clear")

    @model_validator(mode="after")
    def _ordered(self) -> SmoothingSettings:
        if self.alert_on < self.suspicious_on:
            raise ValueError("alert_on must be >= suspicious_on")
        return self


class WebhookSettings(Section):
    url: str = Field(description="http(s) URL that receives a JSON POST per event")
    levels: list[Level] = Field(default_factory=lambda: [Level.ALERT], description="levels that trigger the webhook")
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_retries: int = Field(5, ge=0, le=20)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url


class AlertSettings(Section):
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    log_level_changes: bool = True


class StreamSettings(Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="stream id: letters, digits, _ . - (up to 64)")
    url: str = Field(description="rtsp://... or rtsps://... camera feed, or a video file path (played at real time, looped)")
    fps: float | None = Field(None, gt=0, le=240, description="processed frames per second; default: scheduler.stream_fps")

    @field_validator("url")
    @classmethod
    def _source(cls, url: str) -> str:
        if "://" in url and not url.startswith(("rtsp://", "rtsps://", "file://")):
            raise ValueError("must be rtsp://, rtsps:// or a file path")
        return url


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    auth_token: str | None = Field(
        None, description="when set, every endpoint but /healthz, the page (/) and /static/ needs `Authorization: Bearer <token>`"
    )
    ice_servers: list[str] = Field(default_factory=list, description="STUN/TURN URLs for WebRTC; none by default")


class Config(Section):
    detector: DetectorSettings = DetectorSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    smoothing: SmoothingSettings = SmoothingSettings()
    alerts: AlertSettings = AlertSettings()
    streams: list[StreamSettings] = Field(default_factory=list)
    server: ServerSettings = ServerSettings()

    @model_validator(mode="after")
    def _unique_streams(self) -> Config:
        ids = [s.id for s in self.streams]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate stream ids: {', '.join(duplicates)}")
        return self


def describe(error: ValidationError) -> str:
    """One line per problem, each led by its key path (``streams.0.urll: unknown key``)."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return "; ".join(lines)


def parse_config(data: object, source: str = "config") -> Config:
    try:
        return Config.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})".replace("\n", " ")) from None
    return parse_config(data, str(path))
