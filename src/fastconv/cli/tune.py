"""``fastconv tune``: measure backends on shapes, calibrate the cost model, or clear the cache."""
import ast


def add_arguments(parser):
    parser.add_argument("--clear", action="store_true", help="delete the tuning cache")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the cost model's coefficients by timing calibration shapes on this machine")
    parser.add_argument("--layers", action="store_true",
                        help="tune the benchmark layers (LeNet, MNIST, VGG, ResNet, AlexNet)")
    parser.add_argument("--shape", action="append", default=[], metavar="X_SHAPE:W_SHAPE[:STRIDE:PADDING]",
                        help="a shape to tune, e.g. '(8,64,56,56):(64,64,3,3):1:1'; repeatable")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])


def _parse(spec):
    parts = spec.split(":")
    if len(parts) not in (2, 4):
        raise ValueError(f"--shape must be X_SHAPE:W_SHAPE[:STRIDE:PADDING], got {spec!r}")
    xs, ws = ast.literal_eval(parts[0]), ast.literal_eval(parts[1])
    stride, padding = 1, 0
    if len(parts) == 4:
        stride = ast.literal_eval(parts[2])
        padding = parts[3] if parts[3] in ("same", "valid") else ast.literal_eval(parts[3])
    return xs, ws, stride, padding


LAYERS = [
    ((64, 1, 28, 28), (6, 1, 5, 5), 1, 2),
    ((64, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    ((64, 32, 14, 14), (64, 32, 3, 3), 1, 1),
    ((1, 128, 56, 56), (256, 128, 3, 3), 1, 1),
    ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    ((8, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    ((8, 256, 28, 28), (64, 256, 1, 1), 1, 0),
    ((8, 3, 227, 227), (96, 3, 11, 11), 4, 0),
]


def run(args):
    from fastconv import _select, _tuning
    if args.clear:
        print(f"removed {_tuning.clear()}")
        _select.reset()
        return 0
    if args.calibrate:
        print("calibrating the cost model (two passes over the calibration shapes, about 4 minutes)...")
        fitted = _select.calibrate(verbose=True)
        print(f"stored {len(fitted)} coefficient rows in {_tuning.cache_path()}")
    shapes = [_parse(s) for s in args.shape] + (LAYERS if args.layers else [])
    for xs, ws, stride, padding in shapes:
        e = _select.tune(xs, ws, stride=stride, padding=padding, dtype=args.dtype)
        print(f"x {xs} w {ws} stride {stride} padding {padding}:")
        print("  " + str(e).replace("\n", "\n  "))
    if not (args.calibrate or shapes):
        print("nothing to do: give --shape, --layers, --calibrate or --clear")
        return 2
    return 0
