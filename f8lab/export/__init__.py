"""Integer export: the integer-only model and its reference executor."""

from f8lab.export.integer_ops import Fixed
from f8lab.export.integerize import IntegerModel, integerize

__all__ = ["Fixed", "IntegerModel", "integerize"]
