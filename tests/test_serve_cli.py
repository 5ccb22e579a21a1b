"""``streamguard serve`` as users start it: a real process, ready for WHIP with no config, stopped by SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from streamguard import assets
from tests.support import free_port

pytestmark = pytest.mark.skipif(bool(assets.missing()), reason="assets missing: run `streamguard assets fetch`")


def test_serve_without_config_answers_and_stops_cleanly_on_sigint() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamguard", "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120  # the first start exports the default engine once
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=2) as r:
                    stats = json.load(r)
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.5)
        assert stats["streams"] == {} and stats["engine"]["detector"] == "mlvp_lite0"
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0]
        assert proc.returncode == 0 and "Traceback" not in output, output
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_with_a_bad_config_exits_with_one_line(tmp_path) -> None:
    config = tmp_path / "sg.yaml"
    config.write_text("streams:\n  - {id: cam, urll: rtsp://127.0.0.1/x}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamguard", "serve", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "streams.0.urll: unknown key" in proc.stderr and "Traceback" not in proc.stderr
