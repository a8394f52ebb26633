"""Data sets: Fashion-MNIST (embedded default), ImageNet folders, synthetic tensors."""

from f8lab.data.fashion_mnist import fashion_mnist
from f8lab.data.imagenet import imagenet, make_subset, val_to_class_folders
from f8lab.data.paths import DataError, default_data_root
from f8lab.data.synthetic import synthetic_images

__all__ = [
    "DataError",
    "default_data_root",
    "fashion_mnist",
    "imagenet",
    "make_subset",
    "synthetic_images",
    "val_to_class_folders",
]
