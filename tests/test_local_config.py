"""An optional, git-ignored conf/local/default.yaml is applied last when present, and nothing breaks without it."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from tests.conftest import REPO


def _compose(extra: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["stage=sr", *extra])


def test_a_local_file_overrides_last(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local/default.yaml").write_text(
        "# @package _global_\nseed: 7\npaths:\n  weights_dir: /data/weights\n"
    )
    cfg = _compose([f"hydra.searchpath=[file://{tmp_path}]", "experiment=demo"])
    assert cfg.seed == 7 and cfg.paths.weights_dir == "/data/weights" and cfg.name == "demo"
    if not (REPO / "conf/local/default.yaml").exists():  # a clean clone: the entry is optional
        assert _compose([f"hydra.searchpath=[file://{tmp_path / 'none'}]"]).seed == 42
