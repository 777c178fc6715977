"""The checkpoint error every weights reader raises (a module of its own, so the model zoo's
download errors can be checkpoint errors without the zoo importing the loader)."""


class CheckpointError(ValueError):
    """A weights file is missing, not a checkpoint, or does not fit the model."""
