"""Batches for training and evaluation, in an order that a resumed run repeats exactly.

Each epoch's order is a permutation drawn from ``(seed, epoch)``; a run resumed at batch
``k`` of an epoch continues with batch ``k`` of the same permutation. With several
processes each takes every ``world``-th batch position. Small data sets (Fashion-MNIST,
synthetic) live on the training device as uint8 tensors and are augmented there, with
crops and flips drawn from ``(seed, epoch)``, so augmentations repeat too; ImageNet
folders go through a DataLoader (same order; augmentations drawn anew after a resume).

Input convention (docs/method.md §7): ``round(255 x) / 256``, i.e. uint8 pixels / 256, which
lies exactly on the unsigned FL-8 grid; or ImageNet mean/std normalisation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from f8lab.data import fashion_mnist, imagenet, synthetic_images
from f8lab.train.config import RunConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def batches_per_epoch(n: int, batch_size: int, world: int, train: bool) -> int:
    """Batches per process: full ones only in training (every process gets as many),
    all images in evaluation."""
    if train:
        return n // (batch_size * world)
    return -(-n // (batch_size * world))


def _permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class TensorBatches:
    """An in-memory image set (uint8, N x C x H x W) cut into seeded batches on ``device``.

    The images live on the training device as one uint8 tensor. At the start of an epoch
    its plan is drawn on the CPU from ``(seed, epoch)``: the order and, when augmenting,
    each image's crop offsets and flip; it moves to the device once, and each batch is
    then cut, cropped and flipped there with batched tensor operations. The same seed
    gives the same batches on every device, and a resumed epoch repeats exactly.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        augment: bool,
        normalize: bool,
        seed: int,
        rank: int = 0,
        world: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.train, self.augment = batch_size, train, augment and train
        self.normalize, self.seed, self.rank, self.world = normalize, seed, rank, world
        channels = images.shape[1]
        self.mean = torch.tensor(IMAGENET_MEAN[:channels], device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD[:channels], device=device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return batches_per_epoch(len(self.images), self.batch_size, self.world, self.train)

    def _to_input(self, pixels: torch.Tensor) -> torch.Tensor:
        if not self.normalize:
            return pixels.float() / 256  # round(255 x) / 256 for x = pixels / 255
        return (pixels.float() / 255 - self.mean) / self.std

    def _plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The epoch's order and, when augmenting, (N, 3) crop offsets dy, dx in 0..4 and
        flips, drawn on the CPU from ``(seed, epoch)``, on the device."""
        n = len(self.images)
        if not self.train:
            return torch.arange(n, device=self.images.device), None
        order = _permutation(n, self.seed, epoch)
        if not self.augment:
            return order.to(self.images.device), None
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        crops = torch.cat(
            [
                torch.randint(0, 5, (n, 2), generator=generator),
                torch.randint(0, 2, (n, 1), generator=generator),
            ],
            dim=1,
        )
        return order.to(self.images.device), crops.to(self.images.device)

    @staticmethod
    def _augment(pixels: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        """Random crop with 2-pixel zero padding and horizontal flip, per image, as two
        gathers: rows shifted by dy, columns shifted by dx and reversed when flipped."""
        n, c, h, w = pixels.shape
        padded = torch.nn.functional.pad(pixels, (2, 2, 2, 2))
        dy, dx, flip = crops.unbind(dim=1)
        rows = dy[:, None] + torch.arange(h, device=pixels.device)
        padded = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 4))
        columns = torch.arange(w, device=pixels.device)
        columns = torch.where(flip[:, None] == 1, w - 1 - columns, columns) + dx[:, None]
        return padded.gather(3, columns.view(n, 1, 1, w).expand(n, c, h, w))

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's batches of ``epoch``, from batch number ``start`` on."""
        order, crops = self._plan(epoch)
        for b in range(start, len(self)):
            position = b * self.world + self.rank
            cut = slice(position * self.batch_size, (position + 1) * self.batch_size)
            index = order[cut]
            if len(index) == 0:  # the last evaluation positions of a sharded test set
                continue
            pixels = self.images[index]
            if crops is not None:
                pixels = self._augment(pixels, crops[cut])
            yield self._to_input(pixels), self.labels[index]


class _Subset(Dataset):
    def __init__(self, dataset: Dataset, order: torch.Tensor) -> None:
        self.dataset, self.order = dataset, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        return self.dataset[int(self.order[i])]


class FolderBatches:
    """ImageNet-style folders through a DataLoader, in the seeded order."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        train: bool,
        seed: int,
        workers: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.dataset: Any = dataset  # a sized Dataset (ImageFolder or a _Subset of one)
        self.batch_size, self.train = batch_size, train
        self.seed, self.workers, self.rank, self.world = seed, workers, rank, world

    def __len__(self) -> int:
        return batches_per_epoch(len(self.dataset), self.batch_size, self.world, self.train)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        order = _permutation(n, self.seed, epoch) if self.train else torch.arange(n)
        positions = [b * self.world + self.rank for b in range(start, len(self))]
        index = (
            torch.cat([order[p * self.batch_size : (p + 1) * self.batch_size] for p in positions])
            if positions
            else torch.zeros(0, dtype=torch.long)
        )
        loader = DataLoader(
            _Subset(self.dataset, index),
            batch_size=self.batch_size,
            num_workers=self.workers,
            pin_memory=torch.cuda.is_available(),
        )
        yield from loader


def _in_memory(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.data.unsqueeze(1).contiguous(), dataset.targets


def make_batches(
    config: RunConfig, train: bool, rank: int = 0, world: int = 1, device: torch.device | str = "cpu"
):
    """The training or evaluation batches that ``config`` asks for; in-memory data sets
    (Fashion-MNIST, synthetic) live on ``device``."""
    data, seed = config.data, config.run.seed
    limit = data.train_limit if train else data.test_limit
    if data.dataset in ("fashion_mnist", "synthetic"):
        if data.dataset == "fashion_mnist":
            images, labels = _in_memory(fashion_mnist(train, data.root))
        else:
            size = 224 if config.model.stem == "imagenet" else 28
            count = (data.train_limit or 512) if train else (data.test_limit or 128)
            fake = synthetic_images(
                count, config.model.in_channels, size, config.model.num_classes, seed=seed + int(train)
            )
            images = (fake.tensors[0] * 256).to(torch.uint8)
            labels = fake.tensors[1]
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return TensorBatches(
            images,
            labels,
            data.batch_size,
            train=train,
            augment=data.augment,
            normalize=data.normalize,
            seed=seed,
            rank=rank,
            world=world,
            device=device,
        )
    normalize = (
        [transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        if data.normalize
        else [transforms.Lambda(lambda x: torch.round(x * 255) / 256)]
    )
    if train:
        pipeline = (
            [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
            if data.augment
            else [transforms.Resize(256), transforms.CenterCrop(224)]
        )
    else:
        pipeline = [transforms.Resize(256), transforms.CenterCrop(224)]
    dataset = imagenet(
        "train" if train else "val",
        data.root,
        transforms.Compose(pipeline + [transforms.ToTensor()] + normalize),
    )
    if limit is not None:
        dataset = _Subset(dataset, torch.arange(min(limit, len(dataset))))
    return FolderBatches(
        dataset, data.batch_size, train=train, seed=seed, workers=data.workers, rank=rank, world=world
    )


def sample_test_images(config: RunConfig, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` test images (in the model's input convention) and their labels."""
    data = dataclasses.replace(config.data, batch_size=count, test_limit=count)
    return next(iter(make_batches(dataclasses.replace(config, data=data), False).batches(0)))
