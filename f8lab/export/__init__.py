"""Integer export: the integer-only model and its reference executor."""

from f8lab.export.integer_ops import Fixed
from f8lab.export.integerize import IntegerModel, integerize
from f8lab.export.layer_table import layer_table

__all__ = ["Fixed", "IntegerModel", "integerize", "layer_table"]
