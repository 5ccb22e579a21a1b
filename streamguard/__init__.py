"""StreamGuard: real-time deepfake detection for live video calls and RTSP camera feeds."""

__version__ = "0.1.0"
