"""fastconv.dask against dask-image on one LocalCluster, same array, same chunks.

An N x N float32 image stored as zarr under /tmp is filtered with a 15x15
convolution, a Gaussian (sigma 4) and a 5x5 median, by fastconv.dask and by
dask-image's ndfilters, each result written back to zarr and, apart, computed
into a sink that keeps nothing (``--sink``: the disk's write speed bounds the
first on both sides, the second times the filters); then LeNet-5 runs
over replicated embedded digits with ``fastconv.dask.predict`` against a
plain in-process loop over batches.  Prints seconds, the speed-up, each
worker's peak RSS, and whether tiles (array corner and chunk corners)
equal the in-memory result.

    python benchmarks/bench_dask.py [--size 20000] [--chunk 2048] [--workers 2]
        [--memory-limit 1GB] [--images 200000] [--dir /tmp/fastconv-bench-dask]
        [--sink zarr null] [--skip conv gauss median predict]
"""
import argparse
import os
import threading
import time

import numpy as np


def _start_sampler(dask_worker):
    """Run on each worker: sample its process's RSS every 20 ms (kept on the worker object)."""
    import psutil
    dask_worker._fc_peak_rss = psutil.Process().memory_info().rss
    if getattr(dask_worker, "_fc_sampler", False):
        return
    dask_worker._fc_sampler = True

    def loop():
        proc = psutil.Process()
        while True:
            dask_worker._fc_peak_rss = max(dask_worker._fc_peak_rss, proc.memory_info().rss)
            time.sleep(0.02)
    threading.Thread(target=loop, daemon=True).start()


def _read_peak(dask_worker):
    return getattr(dask_worker, "_fc_peak_rss", 0)


class NullSink:
    """A store target that keeps nothing: every chunk is computed, none is written."""

    def __setitem__(self, key, value):
        pass


def run(client, label, build, out_path):
    """Compute ``build()`` on the cluster into zarr at ``out_path`` (or into
    :class:`NullSink` when it is None); return seconds and the worst worker peak."""
    import dask.array as da
    client.run(_start_sampler)
    t0 = time.perf_counter()
    if out_path is None:
        da.store(build(), NullSink(), lock=False)
    else:
        # Uncompressed: random floats do not compress, and both sides pay the same I/O.
        da.to_zarr(build(), out_path, overwrite=True, compute=True, compressors=None)
    dt = time.perf_counter() - t0
    peaks = client.run(_read_peak)
    mb = [p / 2 ** 20 for p in peaks.values()]
    print(f"  {label:<28} {dt:8.1f} s   worker peak RSS: "
          + ", ".join(f"{m:.0f} MB" for m in mb), flush=True)
    return dt, max(mb)


def _replicate(base, start, stop):
    return base[np.arange(start, stop) % len(base)]


def check_tiles(src, y, inmem, halo, chunk):
    """Tiles of ``y`` (a zarr or dask array) at the array's corner and across
    chunk corners against ``inmem``."""
    n = src.shape[0]
    worst = 0.0
    for r, c in ((0, 0), (chunk - 40, chunk - 40), (n - 80, 2 * chunk - 40), (n // 2, n - 80)):
        r0, c0, r1, c1 = max(r - halo, 0), max(c - halo, 0), min(r + 80 + halo, n), min(c + 80 + halo, n)
        ref = inmem(np.asarray(src[r0:r1, c0:c1]))[r - r0:r - r0 + 80, c - c0:c - c0 + 80]
        got = np.asarray(y[r:r + 80, c:c + 80])
        worst = max(worst, float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)))
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--images", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dir", default="/tmp/fastconv-bench-dask")
    ap.add_argument("--skip", nargs="*", default=[], help="cases to skip: conv gauss median predict")
    ap.add_argument("--sink", nargs="+", choices=("zarr", "null"), default=["zarr", "null"],
                    help="where results go: written to zarr, or computed and dropped (default both)")
    args = ap.parse_args(argv)

    import dask
    import dask.array as da
    import distributed
    import zarr
    from dask_image import ndfilters

    import fastconv
    import fastconv.dask as fd
    from fastconv import filters, nn
    from fastconv.data import load_mnist, normalize
    from fastconv.models import LeNet5

    n, ch = args.size, args.chunk
    os.makedirs(args.dir, exist_ok=True)
    src_path = os.path.join(args.dir, f"img{n}.zarr")
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"CPU {cpu}; {os.cpu_count()} CPUs; LocalCluster {args.workers} workers x 1 thread, "
          f"memory_limit {args.memory_limit}; image {n}x{n} float32 in chunks of {ch}", flush=True)

    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                       memory_limit=args.memory_limit, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        print("  worker fastconv threads:", sorted(client.run(fastconv.get_num_threads).values()))
        if not os.path.exists(src_path):
            t0 = time.perf_counter()
            img = da.random.default_rng(0).random((n, n), dtype=np.float32, chunks=ch)
            da.to_zarr(img, src_path, overwrite=True, compressors=None)
            print(f"  wrote {src_path} in {time.perf_counter() - t0:.1f} s", flush=True)
        x = da.from_zarr(src_path)
        src = zarr.open_array(src_path, mode="r")
        k15 = np.random.default_rng(1).random((15, 15)).astype(np.float32)
        cases = {
            "conv": ("15x15 convolution",
                     lambda: fd.convolve2d(x, k15, "same", "symm"),
                     lambda: ndfilters.convolve(x, k15, mode="reflect"),
                     lambda t: fastconv.convolve2d(t, k15, "same", "symm"), 7),
            "gauss": ("Gaussian sigma 4",
                      lambda: fd.gaussian_filter(x, 4.0),
                      lambda: ndfilters.gaussian_filter(x, 4.0),
                      lambda t: filters.gaussian_filter(t, 4.0), 16),
            "median": ("median 5x5",
                       lambda: fd.median_filter(x, 5),
                       lambda: ndfilters.median_filter(x, size=5),
                       lambda t: filters.median_filter(t, 5), 2),
        }
        for key, (title, ours, peer, inmem, halo) in cases.items():
            if key in args.skip:
                continue
            for sink in args.sink:
                print(f"{title}, " + ("written to zarr:" if sink == "zarr" else
                                      "computed, nothing written:"), flush=True)
                outs = [os.path.join(args.dir, f"out-{key}-{who}.zarr") if sink == "zarr" else None
                        for who in ("fastconv", "daskimage")]
                t_f, _ = run(client, "fastconv.dask", ours, outs[0])
                t_p, _ = run(client, "dask-image", peer, outs[1])
                got = [zarr.open_array(o, mode="r") if o else build()
                       for o, build in zip(outs, (ours, peer))]
                err, err_p = (check_tiles(src, y, inmem, halo, ch) for y in got)
                print(f"  dask-image / fastconv: {t_p / t_f:.1f}x; tiles vs in memory: max rel err "
                      f"{err:.1e} (dask-image's {err_p:.1e})", flush=True)

        if "predict" not in args.skip:
            digits, _ = load_mnist()
            base = normalize(digits).reshape(-1, 1, 28, 28).astype(np.float32)
            reps = -(-args.images // len(base))
            blk = 8 * args.batch
            # The digits go to every worker once (not into the graph); each block
            # is cut from them on a worker.
            shipped = client.scatter(base, broadcast=True)
            imgs = da.concatenate([
                da.from_delayed(dask.delayed(_replicate)(shipped, i, min(i + blk, args.images)),
                                (min(i + blk, args.images) - i, 1, 28, 28), np.float32)
                for i in range(0, args.images, blk)])
            model = LeNet5()
            print(f"predict: LeNet-5 over {args.images} images, batch {args.batch}:", flush=True)
            client.run(_start_sampler)
            t0 = time.perf_counter()
            out = fd.predict(model, imgs, batch_size=args.batch).compute()
            t_d = time.perf_counter() - t0
            peaks = [p / 2 ** 20 for p in client.run(_read_peak).values()]
            local = np.concatenate([base] * reps)[:args.images]
            m = LeNet5().eval()
            m.load_state_dict(model.state_dict())
            t0 = time.perf_counter()
            with nn.no_grad(), fastconv.num_threads(len(os.sched_getaffinity(0))):
                ref = np.concatenate([m(nn.Tensor(local[i:i + args.batch])).data
                                      for i in range(0, len(local), args.batch)])
            t_l = time.perf_counter() - t0
            print(f"  fastconv.dask.predict on the cluster: {args.images / t_d:,.0f} images/s "
                  f"({t_d:.1f} s; worker peak RSS {', '.join(f'{p:.0f} MB' for p in peaks)})")
            print(f"  in-process loop ({len(os.sched_getaffinity(0))} threads): "
                  f"{args.images / t_l:,.0f} images/s ({t_l:.1f} s); "
                  f"max |diff| {float(np.abs(out - ref).max()):.1e}", flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
