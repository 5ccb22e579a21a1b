"""Frame sources: WebRTC (WHIP), RTSP and files, all delivering latest-frame-wins Frames."""
