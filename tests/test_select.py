"""backend="auto": the choice, explain, tune and the persistent tuning cache."""
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import fastconv
from fastconv import _dispatch, _registry, _select, _tuning


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache directory."""
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path / "cache"))
    _select.reset()
    yield tmp_path / "cache"
    _select.set_tuning(False)
    _select.reset()


SHAPES = [((8, 64, 28, 28), (64, 64, 3, 3), 1, 1, 1), ((1, 1, 64, 64), (1, 1, 15, 15), 1, 7, 1),
          ((4, 16, 32, 32), (16, 1, 3, 3), 2, 1, 16), ((2, 8, 20, 20), (4, 8, 1, 1), 1, 0, 1)]


class TestChoice:
    @pytest.mark.parametrize("xs,ws,stride,padding,groups", SHAPES)
    def test_choice_is_deterministic_and_can_serve(self, xs, ws, stride, padding, groups):
        a = fastconv.explain(xs, ws, stride=stride, padding=padding, groups=groups)
        _select.reset()
        b = fastconv.explain(xs, ws, stride=stride, padding=padding, groups=groups)
        assert a.choice == b.choice
        assert _dispatch.backend_module(a.choice[0]).unsupported(a.geometry) is None

    def test_a_fitted_row_of_another_length_is_passed_over(self):
        # an older version's fit (other features) in the cache must not break the model
        key = _select._model_key("direct", "cython", "float32")
        _select._data()["models"][key] = [1.0, 2.0, 3.0]
        row = _select.coefficients("direct", "cython", "float32")
        assert len(row) == len(_select._FALLBACK["direct"])
        p = _select._params((1, 3, 32, 32), (8, 3, 3, 3), 1, 1, 1, 1, np.float32)
        assert np.isfinite(_select.predict(p, "direct", "cython"))

    @pytest.mark.parametrize("xs,ws,stride,padding,groups", SHAPES)
    def test_explain_lists_every_candidate_that_can_serve(self, xs, ws, stride, padding, groups):
        e = fastconv.explain(xs, ws, stride=stride, padding=padding, groups=groups)
        listed = {(c["backend"], c["engine"]) for c in e.candidates if c["engine"]}
        assert listed == set(_dispatch.candidates(e.geometry))
        assert "choice:" in str(e)

    def test_auto_never_picks_an_uncompiled_numba_kernel_when_cython_serves(self):
        e = fastconv.explain((2, 4, 16, 16), (4, 4, 3, 3), padding=1)
        if any(c[1] == "cython" for c in _dispatch.candidates(e.geometry)):
            assert e.choice[1] == "cython"

    def test_forced_backend_is_always_honoured(self, rng):
        x = rng.standard_normal((2, 4, 12, 12)).astype(np.float32)
        w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
        ref = fastconv.conv2d(x, w, padding=1, backend="naive")
        for b in fastconv.backends():
            for e in _dispatch.engines(b):
                np.testing.assert_allclose(fastconv.conv2d(x, w, padding=1, backend=b, engine=e), ref,
                                           rtol=1e-4, atol=1e-4)

    def test_non_finite_input_keeps_nan_where_the_direct_result_has_it(self, rng):
        x = rng.standard_normal((2, 16, 32, 32)).astype(np.float32)
        x[0, 3, 10, 10] = np.nan
        x[1, 0, 0, 5] = np.inf
        w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
        ref = fastconv.conv2d(x, w, padding=1, backend="naive")
        out = fastconv.conv2d(x, w, padding=1)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))

    @pytest.mark.parametrize("xs,ws,stride,padding,groups", SHAPES)
    def test_results_are_bitwise_identical_run_to_run(self, xs, ws, stride, padding, groups, rng):
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        for b in fastconv.backends():
            for e in _dispatch.engines(b):
                if e == "numba" and b != "naive":
                    continue  # compile time; the naive case covers the engine
                kw = dict(stride=stride, padding=padding, groups=groups, backend=b, engine=e)
                try:
                    first = fastconv.conv2d(x, w, **kw)
                except ValueError:
                    continue
                np.testing.assert_array_equal(fastconv.conv2d(x, w, **kw), first)


class TestFreshWeights:
    """Training calls (weights new every call) price Winograd's filter transform in."""

    def _deep_small_plane(self):
        from fastconv._validation import conv2d_args
        return conv2d_args(np.zeros((32, 512, 2, 2), np.float32), np.zeros((512, 512, 3, 3), np.float32),
                           None, 1, 1, 1, 1)[3]

    def test_the_filter_transform_is_priced_only_for_fresh_weights(self):
        p = self._deep_small_plane()
        cached = _select.predict(p, "winograd", "cython")
        fresh = _select.predict(p, "winograd", "cython", fresh=True)
        assert fresh > cached
        assert _select.predict(p, "im2col", "cython", fresh=True) == _select.predict(p, "im2col", "cython")

    def test_fft_prices_its_kernel_spectra_for_fresh_weights(self):
        from fastconv._validation import conv2d_args
        p = conv2d_args(np.zeros((64, 16, 10, 10), np.float32), np.zeros((6, 16, 5, 5), np.float32),
                        None, 1, 4, 1, 1)[3]
        assert _select.predict(p, "fft", "cython", fresh=True) > _select.predict(p, "fft", "cython")

    def test_a_training_call_is_chosen_apart_from_an_inference_call(self, monkeypatch):
        # Which backend a training call gets is no constant: since the filter
        # transform became one GEMM, Winograd with fresh filters beats im2col
        # on this layer (4.1-4.3 against 4.6-4.8 ms, AMD EPYC Zen 5, 2
        # threads), and whether the model sees it depends on the CPU's fit.
        # What holds everywhere is that a training call is priced with the
        # transform and memoised apart from an inference call.
        p = self._deep_small_plane()
        seen, real = [], _select.predict
        monkeypatch.setattr(_select, "predict",
                            lambda p, b, e, fresh=False: seen.append(fresh) or real(p, b, e, fresh=fresh))
        _select.reset()
        try:
            with _select.fresh_weights():
                assert _select.choose(p) is not None
            assert seen and all(seen)
            seen.clear()
            assert _select.choose(p) is not None
            assert seen and not any(seen)
        finally:
            _select.reset()

    def test_autograd_marks_weights_that_take_gradients(self, monkeypatch):
        from fastconv import nn
        seen = []
        real = _dispatch.run

        def spy(*args, **kwargs):
            seen.append(_select.weights_are_fresh())
            return real(*args, **kwargs)

        monkeypatch.setattr(_dispatch, "run", spy)
        x = nn.Tensor(np.ones((1, 2, 5, 5), np.float32))
        w = nn.Tensor(np.ones((3, 2, 3, 3), np.float32), requires_grad=True)
        y = nn.functional.conv2d(x, w, padding=1)
        nn.functional.conv2d(x, nn.Tensor(w.data), padding=1)
        assert seen == [True, False]
        x.requires_grad = True
        seen.clear()
        nn.functional.conv2d(x, w, padding=1).sum().backward()
        assert seen == [True, True]      # the forward, then the input gradient's convolution
        assert not _select.weights_are_fresh()


class TestTuningCache:
    def test_tune_stores_the_winner_and_auto_uses_it(self, private_cache):
        e = fastconv.tune((1, 2, 24, 24), (2, 2, 3, 3), padding=1)
        assert e.reason.startswith("measured by tune()")
        data = json.loads((private_cache / "tuning.json").read_text())
        assert data["format"] == _tuning.FORMAT and len(data["entries"]) == 1
        measured = {(c["backend"], c["engine"]): c["measured_ms"] for c in e.candidates if c["engine"]}
        fastest = min(v for v in measured.values() if v is not None)
        assert measured[e.choice] <= _select._MEASURED_MARGIN * fastest

    def test_tune_leaves_out_only_what_the_model_rules_out(self):
        # A big layer: the naive loop, priced far beyond the best, is not timed.
        big = _select._params((8, 256, 28, 28), (256, 256, 3, 3), 1, 1, 1, 1, np.dtype("float32"))
        cands = _select._candidates(big, "auto", False, False)
        kept = _select._worth_timing(big, cands)
        assert ("naive", "cython") in cands and ("naive", "cython") not in kept
        cost = {c: float(np.dot(_select.features(big, c[0]), _select.coefficients(c[0], c[1], big.dtype)))
                for c in cands}
        assert min(cands, key=cost.get) in kept
        # A small one is timed whole: its slowest candidate costs little to time.
        small = _select._params((1, 2, 24, 24), (2, 2, 3, 3), 1, 1, 1, 1, np.dtype("float32"))
        cands = _select._candidates(small, "auto", False, False)
        assert _select._worth_timing(small, cands) == cands

    def test_a_measured_winner_must_beat_the_model_by_the_margin(self):
        # Near-equal timings are noise: the model's choice stays unless clearly beaten.
        cands = [("direct", "cython"), ("im2col", "cython")]
        near = {"times": {"direct/cython": 1.03e-3, "im2col/cython": 1.00e-3}}
        far = {"times": {"direct/cython": 1.30e-3, "im2col/cython": 1.00e-3}}
        assert _select._best_measured(near, cands, cands[0]) == cands[0]
        assert _select._best_measured(far, cands, cands[0]) == cands[1]

    def test_racers_take_turns_in_a_rotating_order(self, monkeypatch):
        # In a fixed order each racer would always inherit its neighbour's spinning threads.
        calls = []

        class Fake:
            def __init__(self, name):
                self.name = name

            def conv2d(self, *args):
                calls.append(self.name)
                time.sleep(1e-3)

        monkeypatch.setattr(_registry, "backend_module", Fake)
        p = _select._params((1, 1, 8, 8), (1, 1, 3, 3), 1, 1, 1, 1, np.dtype("float32"))
        cands = [("a", "cython"), ("b", "cython"), ("c", "cython")]
        _select.measure(p, cands, budget=0, min_rounds=3, max_rounds=3)
        rounds = calls[-3 * 2 * len(cands):]      # each turn: one untimed call, one timed
        assert [rounds[6 * k] for k in range(3)] == ["a", "b", "c"]

    def test_a_new_process_reads_the_cache(self, private_cache):
        fastconv.tune((1, 2, 24, 24), (2, 2, 3, 3), padding=1)
        code = ("import fastconv; e = fastconv.explain((1, 2, 24, 24), (2, 2, 3, 3), padding=1); "
                "print(e.reason)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             # the same thread count as this process (part of the cache key),
                             # whatever an earlier test left in the environment
                             env={**__import__("os").environ, "FASTCONV_CACHE_DIR": str(private_cache),
                                  "FASTCONV_NUM_THREADS": str(fastconv.get_num_threads())})
        assert out.stdout.startswith("measured by tune()")

    @pytest.mark.parametrize("content", ["{not json", json.dumps({"library": "other"}), json.dumps([1, 2])])
    def test_corrupt_or_foreign_file_is_ignored_with_a_warning(self, private_cache, content):
        private_cache.mkdir(parents=True)
        (private_cache / "tuning.json").write_text(content)
        _select.reset()
        with pytest.warns(RuntimeWarning, match="ignoring the tuning cache"):
            e = fastconv.explain((1, 1, 16, 16), (1, 1, 3, 3))
        assert e.choice in _dispatch.candidates(e.geometry)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fastconv.tune((1, 1, 16, 16), (1, 1, 3, 3))  # rewrites a valid file
        assert json.loads((private_cache / "tuning.json").read_text())["library"] == "fastconv"

    def test_concurrent_writers_lose_nothing(self, private_cache):
        code = ("import sys; from fastconv import _tuning\n"
                "for i in range(20): _tuning.update('entries', f'{sys.argv[1]}-{i}', {'times': {}})")
        env = {**__import__("os").environ, "FASTCONV_CACHE_DIR": str(private_cache)}
        procs = [subprocess.Popen([sys.executable, "-c", code, str(k)], env=env) for k in range(4)]
        assert all(p.wait() == 0 for p in procs)
        data = json.loads((private_cache / "tuning.json").read_text())
        assert len(data["entries"]) == 80

    def test_tune_clear_command_removes_the_file(self, private_cache):
        fastconv.tune((1, 1, 16, 16), (1, 1, 3, 3))
        from fastconv.cli import main
        assert main(["tune", "--clear"]) == 0
        assert not (private_cache / "tuning.json").exists()

    def test_set_tuning_measures_a_new_shape_on_first_use(self, private_cache, rng):
        fastconv.set_tuning(True)
        fastconv.conv2d(rng.standard_normal((1, 2, 20, 20)), rng.standard_normal((2, 2, 3, 3)))
        data = json.loads((private_cache / "tuning.json").read_text())
        assert len(data["entries"]) == 1


class TestBadArguments:
    def test_explain_names_bad_dtype(self):
        with pytest.raises(TypeError, match="dtype"):
            fastconv.explain((1, 1, 8, 8), (1, 1, 3, 3), dtype="int32")

    def test_explain_names_bad_shape(self):
        with pytest.raises(ValueError, match="x_shape"):
            fastconv.explain((8, 8), (1, 1, 3, 3))


class TestCostModelPerInstructionSet:
    def test_select_does_not_import_dispatch(self):
        code = ("import sys, fastconv._select as s; "
                "print('_dispatch' in vars(s), 'fastconv._dispatch' in sys.modules)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0] == "False"

    def test_every_shipped_fit_names_its_class_cpu_and_rows(self):
        fits = _select.shipped_fits()
        assert fits
        for fit in fits:
            assert fit["isa"] in ("baseline", "avx2", "avx512")
            assert fit["cpu"] and fit["threads"] >= 1
            for key, row in fit["coeffs"].items():
                backend = key.split("|")[0]
                assert len(row) == len(_select._FALLBACK[backend]), key
                assert all(c >= 0 for c in row)

    def test_a_fit_made_on_this_cpu_is_used_as_it_is(self):
        fit = _select.shipped_fits()[0]
        got, exact = _select.shipped_fit(fit["isa"], fit["cpu"].rstrip(")") + ", stepping 1)")
        assert exact and got is fit

    def test_another_cpu_gets_its_class_and_a_rescaling(self):
        fit = _select.shipped_fits()[0]
        got, exact = _select.shipped_fit(fit["isa"], "Some Other CPU (cpu family 1, model 1)")
        assert not exact and got["isa"] == fit["isa"]

    @pytest.mark.parametrize("cls", ["avx2", "avx512"])
    def test_another_model_of_a_fitted_vendor_starts_from_that_vendors_fit(self, cls):
        # A Zen 3 (AMD, AVX2 only) ranks kernels as the AMD fits do, not as
        # an Intel fit of its class: its rescaling then starts close.
        for fit in (f for f in _select.shipped_fits() if f["isa"] == cls):
            vendor = fit["cpu"].split()[0]
            got, exact = _select.shipped_fit(cls, f"{vendor} Unseen (cpu family 1, model 1)")
            assert not exact and got["isa"] == cls and got["cpu"].split()[0] == vendor

    def test_an_unseen_model_starts_from_its_vendors_nearest_generation(self):
        # A desktop Zen 5 (family 26, another model) is closer to the Zen 5
        # fit than to a Zen 4 one (family 25), whichever comes first.
        for fit in _select.shipped_fits():
            fm = _select._family_model(fit["cpu"])
            if fm is None:
                continue
            vendor = fit["cpu"].split()[0]
            unseen = f"{vendor} Unseen (cpu family {fm[0]}, model {fm[1] + 1000}, stepping 0)"
            got, exact = _select.shipped_fit(fit["isa"], unseen)
            assert not exact and got["isa"] == fit["isa"]
            assert _select._family_model(got["cpu"])[0] == fm[0]

    def test_self_measurement_is_stored_once_per_cpu_and_thread_count(self, tmp_path, monkeypatch):
        monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
        _select.reset()
        try:
            f = _select.self_measure()
            assert f and all(_select._PROBE_LIMITS[0] <= v <= _select._PROBE_LIMITS[1] for v in f.values())
            stored = json.loads((tmp_path / "tuning.json").read_text())["probes"]
            assert list(stored.values()) == [f]
            calls = []
            monkeypatch.setattr(_select, "measure", lambda *a, **k: calls.append(1) or {})
            _select.reset()
            assert _select.self_measure() == f and not calls
        finally:
            _select.reset()

    def test_self_measurement_can_be_switched_off(self, tmp_path, monkeypatch):
        monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
        monkeypatch.setenv("FASTCONV_SELF_MEASURE", "0")
        _select.reset()
        try:
            assert _select.self_measure() == {}
        finally:
            _select.reset()

    def test_info_says_which_model_is_in_use(self):
        assert "fit from" in _select.model_source() or "fallback" in _select.model_source()
