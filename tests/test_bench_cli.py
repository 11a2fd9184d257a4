"""``fastconv bench`` on its two tiny cases: tables, JSON and chart, no timing claims."""
import json
import re

import pytest

from fastconv import _bench
from fastconv.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One ``fastconv bench --tiny`` run shared by the checks (it takes a few seconds)."""
    import io
    import sys
    out_dir = tmp_path_factory.mktemp("bench-out")
    buf = io.StringIO()
    saved, sys.stdout = sys.stdout, buf
    try:
        status = main(["bench", "--tiny", "--threads", "1", "--repeat", "1", "--out", str(out_dir)])
    finally:
        sys.stdout = saved
    return status, buf.getvalue(), out_dir


class TestBenchCommand:
    def test_exits_zero(self, tiny_run):
        assert tiny_run[0] == 0

    def test_prints_a_table_per_case_and_the_summary(self, tiny_run):
        text = tiny_run[1]
        for case in _bench.TINY:
            assert f"== {case.name}:" in text
        assert "fastconv auto" in text
        assert "geometric mean of peer time / fastconv time" in text

    def test_prints_blas_kernel_and_threads(self, tiny_run):
        text = tiny_run[1]
        assert "BLAS:" in text and "kernel" in text
        assert "threads: fastconv 1" in text

    def test_names_the_cpu_and_instruction_set_above_the_table_and_in_json(self, tiny_run):
        from fastconv import _select, _tuning
        assert f"CPU: {_tuning.cpu_name()}" in tiny_run[1]
        assert f"fastconv kernels: {_select.isa_class()}" in tiny_run[1]
        env = json.loads((tiny_run[2] / "bench.json").read_text())["environment"]
        assert env["cpu"] == _tuning.cpu_name() and env["isa"] == _select.isa_class()

    def test_missing_peers_show_na_not_errors(self, tiny_run):
        text = tiny_run[1]
        try:
            import torch  # noqa: F401
        except ImportError:
            assert "n/a (torch not installed)" in text
        assert "Traceback" not in text

    def test_writes_json_with_every_case_and_forced_backend(self, tiny_run):
        data = json.loads((tiny_run[2] / "bench.json").read_text())
        assert [c["name"] for c in data["cases"]] == [c.name for c in _bench.TINY]
        for c in data["cases"]:
            labels = {r["label"] for r in c["results"]}
            assert "auto" in labels and "naive/cython" in labels | {"naive/numba"}
            assert set(c["ratios"]) == set(c["reference_times"])
        assert data["environment"]["threads"]["fastconv"] == 1
        assert set(data["summary"]) == {"layers", "images"}

    def test_writes_png_chart(self, tiny_run):
        png = (tiny_run[2] / "bench.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"

    def test_restores_thread_count(self, tiny_run):
        import fastconv
        assert fastconv._threads._n_threads is None

    def test_unknown_backend_is_rejected_with_the_accepted_names(self, capsys, tmp_path):
        assert main(["bench", "--tiny", "--backends", "nosuch", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "'nosuch'" in err and "naive" in err


class TestCases:
    def test_case_ids_are_unique(self):
        names = [c.name for c in _bench.ALL_CASES + _bench.TINY]
        assert len(names) == len(set(names))

    def test_quick_keeps_small_images_and_all_layers(self):
        quick = _bench.select_cases("all", quick=True)
        assert all(c.x_shape[0] <= 512 for c in quick if c.group == "images")
        assert len([c for c in quick if c.group == "layers"]) == len(_bench.LAYERS)

    def test_image_params_are_the_geometry_convolve2d_resolves(self, monkeypatch):
        # what auto chooses and tune stores must be keyed as the timed call is
        from fastconv import _dispatch, _signal
        seen = []
        real = _dispatch.resolve_for
        monkeypatch.setattr(_dispatch, "resolve_for", lambda p, *a, **k: seen.append(p) or real(p, *a, **k))
        c = _bench.case("img512-k31-float32")
        x, w = c.data(0)
        _signal.convolve2d(x, w, mode="same")
        p = c.params()
        assert seen == [p]
        assert (p.H, p.W, p.pad, p.OH, p.OW) == (512, 512, (15, 15, 15, 15), 512, 512)

    def test_layer_output_shape_matches_the_layer(self):
        assert _bench.case("alexnet-conv1").params().out_shape == (8, 96, 55, 55)

    def test_naive_is_skipped_over_the_cost_cap(self):
        case = _bench.case("vgg-conv3")
        impls = [i for i in _bench.fastconv_impls(case, {"naive"}) if i.kind == "forced"]
        res = _bench.run_case(case, impls, repeat=1, max_call=1e-3)
        assert all(r.skipped and "cap" in r.skipped for r in res.results)

    def test_a_failing_implementation_is_reported_not_raised(self):
        def boom(x, w):
            def f():
                raise RuntimeError("kaput")
            return f
        res = _bench.run_case(_bench.TINY[0], [_bench.Impl("boom", "forced", boom)], repeat=1)
        assert res.results[0].error == "RuntimeError: kaput"


class TestWithoutOptionalPeers:
    def test_runs_with_torch_and_cv2_missing(self, monkeypatch, tmp_path, capsys):
        # A None entry in sys.modules makes the import fail as in a fresh
        # environment holding only the runtime dependencies.
        import sys
        monkeypatch.setitem(sys.modules, "torch", None)
        monkeypatch.setitem(sys.modules, "cv2", None)
        status = main(["bench", "--tiny", "--threads", "1", "--repeat", "1", "--backends", "naive",
                       "--out", str(tmp_path)])
        text = capsys.readouterr().out
        assert status == 0
        assert "n/a (torch not installed)" in text and "n/a (cv2 not installed)" in text
        assert re.search(r"layers\s+torch\s+n/a\s+n/a", text)  # no peer to divide by
        data = json.loads((tmp_path / "bench.json").read_text())
        assert data["cases"][0]["ratios"]["torch"] == {"auto": None, "best": None}
        assert (tmp_path / "bench.png").exists()


class TestQuickEngines:
    def test_quick_lists_numba_twins_as_skipped_unless_named(self):
        case = _bench.TINY[0]
        impls = {i.label: i for i in _bench.fastconv_impls(case, None, cython_first=True)}
        assert impls["naive/cython"].make is not None
        assert impls["naive/numba"].make is None and "--quick" in impls["naive/numba"].missing
        named = {i.label: i for i in _bench.fastconv_impls(case, {"naive/numba"}, cython_first=True)}
        assert named["naive/numba"].make is not None

    def test_a_forced_backend_slower_than_the_cap_is_timed_by_its_warm_up_only(self):
        import time
        case = _bench.TINY[0]
        # No cost estimate exists for this backend, so only its warm-up can tell.
        slow = _bench.Impl("slow/cython", "forced", lambda x, w: (lambda: time.sleep(0.01)),
                           backend="slow", engine="cython")
        impls = [i for i in _bench.fastconv_impls(case, set()) if i.kind == "auto"] + [slow]
        res = _bench.run_case(case, impls, repeat=3, max_call=0.005)
        forced = res.get("slow/cython")
        assert forced.runs == 0 and "warm-up call only" in forced.note
        assert res.auto.runs >= 3


class TestRematch:
    def test_the_compared_rows_take_turns_and_keep_their_lower_minimum(self):
        case = _bench.TINY[1]                      # an image: three scipy peers, auto and its choice
        impls = _bench.peers(case) + _bench.fastconv_impls(case)
        res = _bench.run_case(case, impls, repeat=1)
        before = {r.label: r.min for r in res.results}
        _bench.rematch(case, impls, res, seconds=0.5)
        compared = {"auto", res.auto_choice, "convolve2d", "fftconvolve", "oaconvolve"}
        for r in res.results:
            if r.min is None:
                continue
            assert r.min <= before[r.label]
            if r.label not in compared and r.label != "cv2.filter2D":
                assert r.min == before[r.label]
        assert res.refs == _bench.reference_times(case, res.results)
        assert any(res.get(lab).min < before[lab] for lab in compared)
