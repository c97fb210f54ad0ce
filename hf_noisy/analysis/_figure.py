"""Writing a matplotlib figure: one PNG, atomically, and the figure closed (no global pyplot state left)."""

from __future__ import annotations

import io
import os

from ..fsutil import atomic_write_bytes


def save_png(fig, path: str | os.PathLike) -> None:
    """Lay out ``fig``, write it to ``path`` as PNG (temporary file + rename) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
