"""Errors whose message is written for the person using the app."""


class PlaygroundError(Exception):
    """Bad input or an unavailable model: the message is shown in the UI as it is."""


class ModelUnavailableError(PlaygroundError):
    """A model could not be loaded; the message names it, says why and how to fix it."""
