"""The one place the commands import matplotlib, which only the ``bench`` extra installs.

The core install (``pip install .``) needs no plotting library: ``fastconv
train`` and the kernels never import it.  A command that draws a chart asks
:func:`pyplot` for it and, when it is missing, tells the user how to get it.
"""

INSTALL_HINT = 'matplotlib is not installed; install the bench extra: pip install "fastconv[bench]"'


class MissingPlotting(ImportError):
    """matplotlib is absent; the message says how to install it."""


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend.

    Raises
    ------
    MissingPlotting
        When matplotlib is not installed; the message names the extra.

    Examples
    --------
    >>> from fastconv.cli._plot import pyplot
    >>> pyplot().__name__  # doctest: +SKIP
    'matplotlib.pyplot'
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingPlotting(INSTALL_HINT) from exc
    matplotlib.use("Agg")  # no display needed, and never steal one
    import matplotlib.pyplot as plt
    return plt


def save(fig, path):
    """Lay out ``fig``, write it to ``path`` (PNG at 100 dpi) and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
