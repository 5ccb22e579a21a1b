"""``streamguard scan`` on real sample media: a verdict per face track, 'no face', and one-line errors."""

from __future__ import annotations

import json

import pytest

from streamguard import assets
from streamguard.cli import main as cli_main

pytestmark = pytest.mark.skipif(bool(assets.missing()), reason="assets missing: run `streamguard assets fetch`")


def test_scan_prints_a_verdict_per_track_and_writes_json_and_plot(tmp_path, capsys) -> None:
    video = assets.asset_path("media/single_face.mp4")
    out_json, out_png = tmp_path / "scan.json", tmp_path / "scan.png"
    assert cli_main(["scan", str(video), "--fps", "5", "--json", str(out_json), "--plot", str(out_png), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 face track" in out and "verdict" in out
    report = json.loads(out_json.read_text())
    (track,) = report["tracks"]
    assert track["frames"] == len(track["timeline"]) > 5
    assert track["verdict"] in ("clear", "suspicious", "alert") and 0 <= track["mean"] <= 1
    assert report["summary"]["faces"] is True
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scan_of_a_video_without_faces_says_so(capsys) -> None:
    assert cli_main(["scan", str(assets.asset_path("media/no_face.mp4")), "--no-progress"]) == 0
    assert "no face found" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, b"\x00\x01 not a video" * 100])
def test_scan_of_a_missing_or_corrupt_file_is_a_one_line_error(tmp_path, capsys, content: bytes | None) -> None:
    video = tmp_path / "clip.mp4"
    if content is not None:
        video.write_bytes(content)
    assert cli_main(["scan", str(video)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streamguard: error:") and "clip.mp4" in err and "\n" not in err and "Traceback" not in err
