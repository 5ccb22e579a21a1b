import pytest

from streamguard.cli import main as cli_main
from streamguard.config import Config, ConfigError, load_config, parse_config

GOOD = """
detector: {name: mlvp_lite0, threshold: 0.6}
scheduler: {max_batch: 16, max_delay_ms: 20}
smoothing: {method: median, window: 5}
alerts:
  webhooks: [{url: "http://127.0.0.1:9/hook", levels: [alert, suspicious]}]
streams:
  - {id: door-cam, url: "rtsp://127.0.0.1:8554/door", fps: 5}
server: {port: 9000, auth_token: s3cret}
"""


def test_empty_config_gives_the_cpu_default_service() -> None:
    config = parse_config(None)
    assert config == Config()
    assert config.detector.name == "mlvp_lite0" and config.detector.backend == "onnxruntime" and config.streams == []


def test_full_config_parses(tmp_path) -> None:
    path = tmp_path / "sg.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.streams[0].id == "door-cam" and config.streams[0].fps == 5
    assert config.alerts.webhooks[0].levels[1].value == "suspicious"
    assert config.server.auth_token == "s3cret"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"streams": [{"id": "a", "urll": "rtsp://x"}]}, r"streams\.0\.urll: unknown key"),
        ({"scheduler": {"max_batch": 0}}, r"scheduler\.max_batch: Input should be greater than or equal to 1"),
        ({"streams": [{"id": "a b", "url": "rtsp://x"}]}, r"streams\.0\.id"),
        ({"streams": [{"id": "a", "url": "http://x"}]}, r"streams\.0\.url: must be rtsp://"),
        ({"streams": [{"id": "a", "url": "rtsp://x"}, {"id": "a", "url": "rtsp://y"}]}, "duplicate stream ids: a"),
        ({"smoothing": {"suspicious_on": 0.8, "alert_on": 0.6}}, "alert_on must be >= suspicious_on"),
        ({"alerts": {"webhooks": [{"url": "ftp://x"}]}}, r"alerts\.webhooks\.0\.url: must start with http"),
        ({"detektor": {}}, "detektor: unknown key"),
    ],
)
def test_bad_config_names_the_key_path(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_config_check_cli(tmp_path, capsys) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text("server: {prot: 80}\n")
    assert cli_main(["config", "check", str(good)]) == 0
    assert "OK (1 streams" in capsys.readouterr().out
    assert cli_main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "server.prot: unknown key" in err and err.count("\n") == 1
    assert cli_main(["config", "check", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("server: [unclosed\n")
    assert cli_main(["config", "check", str(tmp_path / "broken.yaml")]) == 2
    assert "cannot read YAML" in capsys.readouterr().err
