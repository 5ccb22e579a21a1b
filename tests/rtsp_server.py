"""A real RTSP server for tests: loops one MPEG-TS file (H.264, passed through, not re-encoded) on 127.0.0.1.

Run it with Debian's ``/usr/bin/python3`` (``gi`` cannot be imported from a virtualenv):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file clip.ts [--path /stream]

It prints ``READY rtsp://127.0.0.1:PORT/PATH`` once it listens, and exits with status 2 when the port is taken.
Needs: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# config-interval=-1 goes on h264parse (SPS/PPS before every keyframe); on rtph264pay keyframes decode corrupt.
# An mp4 through multifilesrc + qtdemux stops after one pass, hence MPEG-TS.
LAUNCH = "( multifilesrc location={file} loop=true ! tsdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"


def _refuse_seeking(pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    """Answer the SEEKING query as handled (not seekable). A looping file otherwise looks seekable, FFmpeg's
    ``PLAY Range: npt=0.000-`` makes the server seek, the seek fails, and every PLAY is answered 503."""
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        fmt = query.parse_seeking()[0]
        query.set_seeking(fmt, False, 0, -1)
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


def _on_media_configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    pay = media.get_element().get_by_name("pay0")
    pay.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _refuse_seeking)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True, help="an MPEG-TS file with H.264 video")
    parser.add_argument("--path", default="/stream", help="mount point (default /stream)")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH.format(file=args.file))
    factory.set_shared(True)  # one pipeline for all clients, like a camera
    factory.connect("media-configure", _on_media_configure)
    server.get_mount_points().add_factory(args.path, factory)

    if server.attach(None) == 0:  # 0: the port is taken
        print(f"port {args.port} is taken", file=sys.stderr, flush=True)
        return 2
    loop = GLib.MainLoop()

    def _quit(*_: Any) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, _quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, _quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
