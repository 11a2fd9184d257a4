"""``fastconv info``: what this install has and what it will run on."""
import json
import platform


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def report():
    """The facts ``fastconv info`` prints, as a dict."""
    import numpy as np

    import fastconv
    from fastconv import _blas, _dispatch, _engines, _isa, _threads

    has_omp, omp_threads = _engines.openmp_status()
    info = {
        "fastconv": fastconv.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": platform.processor() or platform.machine(),
        "isa": _isa.report(),
        "threads": _threads.get_num_threads(),
        "openmp": {"built_with": has_omp, "default_threads": omp_threads},
        "backends": {b: _dispatch.engines(b) for b in _dispatch.backends()},
        "blas": _threads.blas_info(),
        "products": _blas.blas_library(),
    }
    try:
        import numba
        info["numba"] = {"version": numba.__version__, "threads": numba.config.NUMBA_NUM_THREADS,
                         "threading_layer": numba.config.THREADING_LAYER}
    except ImportError:
        info["numba"] = None
    from fastconv import _select
    info.update(_select.info())
    return info


def run(args):
    info = report()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"fastconv {info['fastconv']}  (Python {info['python']}, numpy {info['numpy']})")
    isa, cpu = info["isa"], info["isa"]["cpu"]
    ident = (f"{cpu['vendor']} family {cpu['family']} model {cpu['model']}"
             if cpu["vendor"] else cpu["machine"])
    print(f"CPU: {cpu['model_name'] or '?'} ({ident})")
    print(f"instruction set: {isa['active']} (this CPU's best: {isa['best']}; FASTCONV_ISA "
          + (f"= {isa['env']})" if isa["env"] else "unset)"))
    print("kernels per family (set run, sets built):")
    for family, f in isa["families"].items():
        print(f"  {family:14s} {f['runs']:9s} built: {', '.join(f['built'])}")
    print(f"threads: {info['threads']}   OpenMP: {'yes' if info['openmp']['built_with'] else 'NO (serial Cython engine)'}"
          f" (default team {info['openmp']['default_threads']})")
    if info["numba"]:
        print(f"numba {info['numba']['version']}: {info['numba']['threads']} threads, "
              f"layer {info['numba']['threading_layer']}")
    print("backends:")
    for b, engines in info["backends"].items():
        print(f"  {b:9s} engines: {', '.join(engines) or 'none'}")
    print("BLAS:")
    for lib in info["blas"]:
        print(f"  {lib['internal_api']} {lib['version']}  kernel {lib['architecture']}  "
              f"threads {lib['num_threads']}")
    print(f"  products call: {info['products']}")
    for key, value in info.items():
        if key not in ("fastconv", "python", "numpy", "cpu", "isa", "threads", "openmp", "numba",
                       "backends", "blas", "products"):
            print(f"{key}: {value}")
    return 0
