"""Equivariant layers: per-degree linear, CG tensor products, norms, CG blocks."""
from .blocks import CGBlock, add_skip
from .linear import SO3Linear
from .norms import SignalNorm, SO3BatchNorm
from .tensor_product import ChannelwiseTensorProduct, FullTensorProduct

__all__ = ["CGBlock", "ChannelwiseTensorProduct", "FullTensorProduct", "SO3BatchNorm", "SO3Linear",
           "SignalNorm", "add_skip"]
