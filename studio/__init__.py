"""studio: train a neural network by pointing and clicking, or headless from the command line."""

__version__ = "0.1.0"
