"""When does transfer learning pay?  The shots curve of ``fastconv transfer``, offline on one CPU core.

A small ResNet is pre-trained on classes 0-4 (the embedded MNIST digits, or
all 30,000 Fashion-MNIST images of T-shirt, trouser, pullover, dress and coat
with ``--data fashion``) and learns classes 5-9 from 1, 5, 10 and 50 images
per class three ways: frozen features + a new head, fine-tuned whole, and the
same network from scratch, trained with Adam past fitting its images until its
training loss stops falling.  Each shot count runs at five seeds; the table
gives mean +- std, ``--json``/``--plot`` write it as data and as a curve.
Options as ``fastconv transfer --help``; docs/transfer.md has the figures::

    python examples/transfer_learning.py --threads 1 --plot digits.png        # embedded digits
    python examples/transfer_learning.py --data fashion --json fashion.json --plot fashion.png

For ImageNet weights (VGG16 / Inception-v3) and your own folder of images, see
``examples/transfer_folder.py``.
"""
import sys

from fastconv.cli import main

if __name__ == "__main__":
    sys.exit(main(["transfer", *sys.argv[1:]]))
