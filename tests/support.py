"""Shared test helpers: free loopback ports, a real RTSP server (GStreamer's, run by Debian's python3), and a real
aiortc publisher peer."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import VideoStreamTrack

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
GST_PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [n for n in ("multifilesrc", "tsdemux", "h264parse", "rtph264pay") if Gst.ElementFactory.find(n) is None]
assert not missing, f"GStreamer elements missing: {missing}"
"""
APT_HINT = "apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"


def mp4_to_mpegts(src: Path, dst: Path) -> Path:
    """Remux (no re-encoding) the H.264 video of an mp4 into MPEG-TS, which GStreamer's multifilesrc can loop.
    FFmpeg's mpegts muxer converts the mp4's length-prefixed H.264 to Annex B by itself."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        video = inp.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in inp.demux(video):
            if packet.dts is not None:  # the demuxer's final flush packet
                packet.stream = stream
                out.mux(packet)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """The server subprocess on a fixed port: start, kill (SIGKILL), freeze (SIGSTOP), thaw (SIGCONT)."""

    def __init__(self, ts_file: Path, port: int) -> None:
        self.ts_file = ts_file
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/stream"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--file", str(self.ts_file)]
        self.proc = proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        line = proc.stdout.readline() if ready else b""
        if not line.startswith(b"READY"):
            self.close()
            raise RuntimeError(f"RTSP server did not start: {line!r} {proc.stderr.read() if proc.stderr else b''!r}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=5)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen process cannot act on anything else
            self.proc.kill()
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            if pipe is not None:
                pipe.close()


def gst_rtsp_problem() -> str | None:
    """Why the RTSP test server cannot run here, or None when it can."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is missing; the RTSP test server needs Debian's python3 with GstRtspServer"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", GST_PROBE], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "unknown error"
        return f"{SYSTEM_PYTHON} cannot run GstRtspServer ({reason}); install it with: {APT_HINT}"
    return None


@dataclass
class Publisher:
    pc: RTCPeerConnection
    player: MediaPlayer | None
    messages: asyncio.Queue[str]

    async def close(self) -> None:
        if self.player is not None and self.player.video is not None:
            self.player.video.stop()
        await self.pc.close()


async def make_publisher(video_path: Path | None, codec: str | None = None) -> Publisher:
    """A client peer sending the sample video (or a synthetic track) with a data channel opened before the offer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    player = MediaPlayer(str(video_path)) if video_path is not None else None
    track = player.video if player is not None and player.video is not None else VideoStreamTrack()
    transceiver = pc.addTransceiver(track, direction="sendonly")
    if codec is not None:
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType == codec])
    messages: asyncio.Queue[str] = asyncio.Queue()
    channel = pc.createDataChannel("verdicts")
    channel.on("message", messages.put_nowait)
    await pc.setLocalDescription(await pc.createOffer())
    return Publisher(pc, player, messages)
