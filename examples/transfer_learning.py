"""Transfer learning with fastconv, offline, in a few minutes on two CPU cores.

A small ResNet pre-trained on digits 0-4 of the MNIST digits embedded in
fastconv (``--data fashion``: Fashion-MNIST classes 0-4) learns classes 5-9
from 50 images per class: first with its features frozen and a new head, then
fine-tuned whole at a lower rate; the same network trained from scratch on the
same 250 images, with the same optimiser until it fits them, is the baseline.
The same as ``fastconv transfer``; options as there::

    python examples/transfer_learning.py                  # embedded digits
    python examples/transfer_learning.py --data fashion --shots 20
"""
import sys

from fastconv.cli import main

if __name__ == "__main__":
    sys.exit(main(["transfer", *sys.argv[1:]]))
