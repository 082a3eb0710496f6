"""mynumber: an open, runnable implementation of Japan's individual number system."""

__version__ = "0.1.0"
