"""``ScanCallback``: the progress hooks ``Scan`` calls (gunpowder's interface)."""

from __future__ import annotations


class ScanCallback:
    """Base class for :class:`Scan` progress callbacks. Override any of ``start``, ``update`` and
    ``stop``; pass an instance as ``Scan(..., progress_callback=...)``.

    Without a callback, ``Scan`` logs its progress (every tenth of the chunks) instead of showing
    gunpowder's tqdm bar.
    """

    def start(self, num_total: int) -> None:
        """Called once before ``Scan`` requests its first chunk.

        Args:

            num_total (``int``):

                The number of chunks ``Scan`` will request.
        """

    def update(self, num_processed: int) -> None:
        """Called after every chunk.

        Args:

            num_processed (``int``):

                How many chunks are done so far.
        """

    def stop(self) -> None:
        """Called once after the last chunk (also when scanning failed)."""
