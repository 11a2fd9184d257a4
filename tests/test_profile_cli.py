"""``fastconv profile`` and the optional plotting: reports, JSON and chart, no timing claims."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from fastconv import nn
from fastconv._profile import profile
from fastconv.cli import main
from fastconv.cli import _plot


def _run(argv):
    buf, saved = io.StringIO(), sys.stdout
    sys.stdout = buf
    try:
        status = main(argv)
    finally:
        sys.stdout = saved
    return status, buf.getvalue()


class TestProfileCommand:
    @pytest.mark.parametrize("mode", [[], ["--eager"], ["--train"]], ids=["compiled", "eager", "train"])
    def test_prints_layers_kinds_and_the_share_outside_convolutions(self, mode, tmp_path):
        path = tmp_path / "p.json"
        status, text = _run(["profile", "--model", "lenet5", "--batch", "4", "--repeat", "1",
                             "--threads", "1", "--json", str(path)] + mode)
        assert status == 0
        assert "outside convolutions:" in text and "per op kind:" in text and "ISA:" in text
        data = json.loads(path.read_text())
        assert data["mode"] == {"": "compiled", "--eager": "eager", "--train": "train"}["".join(mode)]
        conv = [r for r in data["layers"] if r["kind"] == "conv"]
        assert len(conv) == 2 and all(r["gflops"] and "/" in r["backend"] for r in conv)
        assert 0 <= data["outside_conv_share"] <= 1
        if mode == ["--train"]:
            assert "conv backward" in data["kinds_ms"] and "optimizer" in data["kinds_ms"]

    def test_writes_a_chart(self, tmp_path):
        pytest.importorskip("matplotlib")
        path = tmp_path / "p.png"
        status, _ = _run(["profile", "--model", "lenet5", "--batch", "2", "--repeat", "1",
                          "--plot", str(path)])
        assert status == 0 and path.stat().st_size > 1000

    def test_unknown_model_is_rejected_with_the_list(self, capsys):
        assert main(["profile", "--model", "nope"]) == 2
        assert "resnet50" in capsys.readouterr().err


class TestProfile:
    def test_rows_follow_the_network_and_sum_below_the_step(self):
        net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        p = profile(net, np.zeros((1, 1, 4, 4), np.float32), mode="eager", repeat=2)
        assert [r.kind for r in p.rows] == ["conv", "relu", "reshape", "linear"]
        assert sum(r.ms for r in p.rows) <= p.step_ms

    def test_bad_mode_is_rejected(self):
        with pytest.raises(ValueError, match="mode must be"):
            profile(nn.ReLU(), np.zeros((1, 1, 2, 2), np.float32), mode="fast")


class TestPlotting:
    def test_missing_matplotlib_names_the_bench_extra(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "matplotlib", None)   # import fails
        with pytest.raises(_plot.MissingPlotting, match=r'pip install "fastconv\[bench\]"'):
            _plot.pyplot()

    def test_profile_plot_without_matplotlib_says_how_to_install_it(self, monkeypatch, capsys, tmp_path):
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        assert main(["profile", "--model", "lenet5", "--plot", str(tmp_path / "p.png")]) == 2
        assert "fastconv[bench]" in capsys.readouterr().err

    def test_core_commands_never_import_matplotlib(self):
        code = ("import sys, fastconv, fastconv.nn, fastconv.models, fastconv.optim, fastconv.cli.train; "
                "from fastconv.cli import build_parser; build_parser(); "
                "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
        subprocess.run([sys.executable, "-c", code], check=True)
