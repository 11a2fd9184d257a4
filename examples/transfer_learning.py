"""Transfer learning with fastconv, offline, in well under a minute on one CPU core.

A small ResNet pre-trained on digits 0-4 of the MNIST digits embedded in
fastconv (``--data fashion``: Fashion-MNIST classes 0-4) learns classes 5-9
from 50 images per class: first with its features frozen and a new head (on
the pooled outputs of all four stages), then fine-tuned whole at a lower rate;
the same network trained from scratch on the same 250 images, with the same
optimiser until it fits them, is the baseline.  The same as
``fastconv transfer``; options as there::

    python examples/transfer_learning.py                  # embedded digits
    python examples/transfer_learning.py --threads 1 --seed 3
    python examples/transfer_learning.py --data fashion --pretrain-per-class 6000 --pretrain-epochs 5
"""
import sys

from fastconv.cli import main

if __name__ == "__main__":
    sys.exit(main(["transfer", *sys.argv[1:]]))
