"""Moved to :mod:`holovae.data.lba.pockets`; this name is kept for code written before."""
from .lba.pockets import *  # noqa: F401,F403
from .lba.pockets import __all__  # noqa: F401
