"""The package version, from the installed metadata (the source tree's when not installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xlatent")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.1.0"
