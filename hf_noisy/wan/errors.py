"""The weak-annotation error."""

from ..errors import HfNoisyError


class WanError(HfNoisyError):
    """A problem with the inputs of a weak-annotation run (missing or wrong-size image, bad option, incomplete cache)."""
