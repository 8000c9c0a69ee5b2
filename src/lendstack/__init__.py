"""lendstack: an open-source platform for internet consumer lending."""

__version__ = "0.1.0"
