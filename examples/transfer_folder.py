"""Transfer learning from ImageNet weights to your own small image folder, with fastconv.

The tutorial's workflow, end to end on the CPU:

1. build VGG16 or Inception-v3 and load ImageNet weights from a torchvision
   ``.pth`` state dict or a Keras ``.h5`` / ``.weights.h5`` file
   (:func:`fastconv.transfer.load_weights` converts Keras's layouts);
2. freeze the body and replace the classifier by one with a class per
   sub-directory of ``--images``;
3. train that new head on the frozen features (computed once, cached);
4. fine-tune the top block (VGG16: conv5_1-conv5_3 and the classifier;
   Inception-v3: ``Mixed_7c``) at ``--finetune-lr``, batch-norm statistics
   kept.

It prints the accuracy on the held-out images (``--val-fraction`` of each
class) after each phase.  The images are what users keep: one directory per
class holding PNG or JPEG files, read with Pillow, resized to ``--size``::

    pets/cat/001.jpg  pets/cat/002.png ...  pets/dog/001.jpg ...

Getting the weights (on a machine with the network)::

    # torchvision
    import torch, torchvision
    torch.save(torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict(), "vgg16.pth")
    torch.save(torchvision.models.inception_v3(weights="IMAGENET1K_V1").state_dict(), "inception_v3.pth")
    # Keras
    import keras
    keras.applications.VGG16(weights="imagenet").save_weights("vgg16.weights.h5")

Then::

    python examples/transfer_folder.py --weights vgg16.pth --images pets/
    python examples/transfer_folder.py --arch inception_v3 --weights inception_v3.pth --images pets/ --size 299

Preprocessing follows the weights: torchvision's VGG16 expects ImageNet's
mean/std normalisation, Keras's VGG16 Caffe's (BGR, mean subtracted), and
both Inception-v3s inputs in [-1, 1] (what torchvision's ``transform_input``
computes).  ``tests/test_transfer.py`` runs this script on a randomly
initialised VGG16 written with torchvision's keys and shapes, at 32x32.
"""
import argparse
import pathlib
import sys
import time

import numpy as np

from fastconv import nn, optim
from fastconv.models import inception_v3, vgg16
from fastconv.nn import functional as F
from fastconv.transfer import (freeze, freeze_batchnorm, get_head, load_weights, param_groups, replace_head,
                               unfreeze)

EXTENSIONS = (".png", ".jpg", ".jpeg")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def load_folder(directory, size):
    """Images of ``directory/<class>/*.{png,jpg,jpeg}`` as (N, size, size, 3) uint8, labels, class names."""
    from PIL import Image
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"--images: no directory {str(root)!r}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in EXTENSIONS:
                with Image.open(path) as im:
                    images.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
                labels.append(label)
    if len(classes) < 2 or not images:
        raise ValueError(f"--images: expected at least two sub-directories of PNG/JPEG images in {str(root)!r}, "
                         f"found {len(classes)} class(es) and {len(images)} image(s)")
    return np.stack(images), np.array(labels), classes


def preprocess(images, arch, weights):
    """uint8 (N, H, W, 3) RGB to the float32 NCHW input the weights were trained on."""
    x = images.astype(np.float32)
    if arch == "inception_v3":
        x = x / 127.5 - 1.0
    elif str(weights).lower().endswith((".h5", ".hdf5", ".keras")):
        x = x[..., ::-1] - CAFFE_MEAN_BGR  # Keras's VGG16: Caffe's BGR, mean subtracted, not scaled
    else:
        x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def build(arch, weights):
    """The ImageNet network with ``weights`` loaded, and its top block."""
    if arch == "vgg16":
        model = vgg16(num_classes=1000)
        load_weights(model, weights)
        top = [model.features[i] for i in range(24, len(model.features))] + [model.classifier]
    else:
        model = inception_v3(num_classes=1000, aux_logits=True)  # torchvision's files hold AuxLogits
        load_weights(model, weights)
        model.AuxLogits = None  # few-shot fine-tuning of the top block never reaches it
        top = [model.Mixed_7c]
    return model, top


def _batches(n, batch, rng=None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + batch] for i in range(0, n, batch)]


def _put_head(model, layer):
    """Put ``layer`` where the classifier sits (VGG's ``classifier[6]``, Inception's ``fc``)."""
    if isinstance(model.classifier if hasattr(model, "classifier") else None, nn.Sequential):
        model.classifier[len(model.classifier) - 1] = layer
    else:
        model.fc = layer


def features(model, x, batch):
    """What the new head sees: the network's output with the head swapped for Identity, eval mode."""
    head = get_head(model)[1]
    _put_head(model, nn.Identity())
    model.eval()
    try:
        with nn.no_grad():
            return np.concatenate([model(nn.Tensor(x[j])).numpy() for j in _batches(len(x), batch)])
    finally:
        _put_head(model, head)


def accuracy(model, x, y, batch):
    model.eval()
    with nn.no_grad():
        logits = np.concatenate([model(nn.Tensor(x[j])).numpy() for j in _batches(len(x), batch)])
    return float((logits.argmax(1) == y).mean())


def split(y, val_fraction, rng):
    """Per class, ``val_fraction`` of the images (at least one when a class has two) held out."""
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(val_fraction * len(idx))) if len(idx) > 1 else 0
        k = min(max(k, 1 if val_fraction > 0 and len(idx) > 1 else 0), len(idx) - 1)
        val.extend(idx[:k])
        train.extend(idx[k:])
    return np.array(train), np.array(val)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="vgg16", choices=("vgg16", "inception_v3"))
    p.add_argument("--weights", required=True, help="torchvision .pth or Keras .h5/.weights.h5 file")
    p.add_argument("--images", required=True, help="directory with one sub-directory of PNG/JPEG images per class")
    p.add_argument("--size", type=int, default=224, help="image side (default 224; Inception-v3: 299, >= 75)")
    p.add_argument("--val-fraction", type=float, default=0.25)
    p.add_argument("--head-epochs", type=int, default=50)
    p.add_argument("--head-lr", type=float, default=0.01)
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write the fine-tuned weights here (.npz)")
    return p.parse_args(argv)


def train(args, log=print):
    """The whole workflow on parsed ``args``; returns the fine-tuned model and the held-out accuracies."""
    rng = np.random.default_rng(args.seed)
    nn.manual_seed(args.seed)
    images, labels, classes = load_folder(args.images, args.size)
    x, y = preprocess(images, args.arch, args.weights), labels
    tr, va = split(y, args.val_fraction, rng)
    log(f"{len(x)} images of {len(classes)} classes ({', '.join(classes)}): {len(tr)} train, {len(va)} held out")

    t = time.perf_counter()
    model, top = build(args.arch, args.weights)
    log(f"{args.arch}: loaded {args.weights} ({time.perf_counter() - t:.1f} s)")

    # 2. Freeze the body, replace the classifier.
    freeze(model)
    head = replace_head(model, len(classes))
    log(f"new head {get_head(model)[0]}: {head.weight.shape[1]} features -> {len(classes)} classes")

    # 3. The body is frozen and in eval mode, so its output never changes: compute it once.
    t = time.perf_counter()
    f = features(model, x, args.batch)
    opt = optim.Adam(head.parameters(), lr=args.head_lr)
    for _ in range(args.head_epochs):
        for j in _batches(len(tr), args.batch, rng):
            loss = F.cross_entropy(head(nn.Tensor(f[tr[j]])), nn.Tensor(y[tr[j]]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    scores = {"head": accuracy(model, x[va], y[va], args.batch) if len(va) else None}
    val = "n/a" if scores["head"] is None else f"{scores['head']:.3f}"
    log(f"head: {args.head_epochs} epochs, train accuracy {accuracy(model, x[tr], y[tr], args.batch):.3f}, "
          f"held-out accuracy {val} ({time.perf_counter() - t:.1f} s)")

    # 4. Fine-tune the top block with the head, at a low rate; batch norm keeps its ImageNet statistics.
    t = time.perf_counter()
    for block in top:
        unfreeze(block)
    opt = optim.SGD(param_groups(model, lr=args.finetune_lr, head_lr=args.finetune_lr), lr=args.finetune_lr,
                    momentum=0.9)
    for _ in range(args.finetune_epochs):
        model.train()
        freeze_batchnorm(model)
        for j in _batches(len(tr), args.batch, rng):
            loss = F.cross_entropy(model(nn.Tensor(x[tr[j]])), nn.Tensor(y[tr[j]]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    scores["finetune"] = accuracy(model, x[va], y[va], args.batch) if len(va) else None
    val = "n/a" if scores["finetune"] is None else f"{scores['finetune']:.3f}"
    log(f"fine-tuned top block: {args.finetune_epochs} epochs, train accuracy "
          f"{accuracy(model, x[tr], y[tr], args.batch):.3f}, held-out accuracy {val} "
          f"({time.perf_counter() - t:.1f} s)")
    if args.save:
        from fastconv.transfer import save_weights
        log(f"wrote {save_weights(model, args.save, classes=np.array(classes))}")
    return model, scores


def main(argv=None):
    train(parse_args(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
