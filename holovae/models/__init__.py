"""H-(V)AE models."""
from .hvae import HVAE, HVAEConfig

__all__ = ["HVAE", "HVAEConfig"]
