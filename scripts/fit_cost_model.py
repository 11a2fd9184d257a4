"""Fit the cost model on this machine and ship it: one fit in data/cost_model.json.

Runs ``fastconv._select.calibrate`` (the same timings as ``fastconv tune
--calibrate``, about four minutes on 2 threads) in a throw-away tuning cache,
then stores the fitted rows as the fit of this CPU at the instruction set the
kernels run at (``FASTCONV_ISA`` caps it, so an AVX-512 machine can fit the
AVX2 class too), replacing an earlier fit of the same class, CPU and thread
count.  Run it on a quiet machine, once per class:

    python scripts/fit_cost_model.py --note "quiet, default OpenBLAS kernel"
    FASTCONV_ISA=avx2 python scripts/fit_cost_model.py
"""
import argparse
import json
import os
import re
import tempfile
from pathlib import Path

MODEL = Path(__file__).resolve().parents[1] / "src" / "fastconv" / "data" / "cost_model.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--note", default="", help="a line on how the fit was made")
    parser.add_argument("--out", default=str(MODEL), help="the cost-model file to update")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FASTCONV_CACHE_DIR"] = tmp
        import fastconv
        from fastconv import _select, _threads, _tuning
        isa, cpu, threads = _select.isa_class(), _tuning.cpu_name(), _threads.get_num_threads()
        print(f"fitting the {isa} class on {cpu}, {threads} threads")
        rows = _select.calibrate(verbose=True)
    suffix = f"|t{threads}|{isa}|{cpu}"
    coeffs = {k[:-len(suffix)]: [float(f"{c:.4g}") for c in v] for k, v in sorted(rows.items())}
    fit = {"isa": isa, "cpu": re.sub(r", stepping \w+\)$", ")", cpu), "threads": threads,
           "fastconv": fastconv.__version__, "note": args.note, "coeffs": coeffs}
    path = Path(args.out)
    data = json.loads(path.read_text())
    data["fits"] = [f for f in data["fits"]
                    if (f["isa"], f["cpu"], f["threads"]) != (fit["isa"], fit["cpu"], fit["threads"])]
    data["fits"].append(fit)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote the {isa} fit of {fit['cpu']} to {path}")


if __name__ == "__main__":
    main()
