"""The error base class: every problem hf-noisy reports about its input derives from it."""


class HfNoisyError(ValueError):
    """Bad input or configuration; the message says what and where. The CLI prints it without a traceback."""
