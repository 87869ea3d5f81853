"""The reference: Fashion-MNIST trained the way the lab notebook teaches.

torchvision's ``FashionMNIST`` with ``ToTensor()``, ``DataLoader(num_workers=2)``, the notebook's
CNN and plain SGD, a validation pass after every epoch, then a test pass (the notebook's
``predict``). Run as its own process (``python -m bench.reference DATA_DIR``) so that it is timed
exactly like ``cnnlab train``; it prints one JSON line per epoch and a summary line, with the field
names ``cnnlab train --json`` uses.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import time
from pathlib import Path

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TRAIN_SIZE, VAL_SIZE = 50_000, 10_000
BATCH_SIZE = 1024
LEARNING_RATE = 0.1


def stage_fashion_mnist(data_dir: Path, source: Path = DEBIAN_FASHION_MNIST) -> Path:
    """Decompress Debian's Fashion-MNIST into torchvision's layout (``DATA_DIR/FashionMNIST/raw``),
    which both the reference and ``cnnlab train`` (through ``CNNLAB_DATA_DIR``) then read."""
    raw = data_dir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if target.is_file():
            continue
        plain, packed = source / name, source / f"{name}.gz"
        if plain.is_file():
            shutil.copyfile(plain, target)
        elif packed.is_file():
            with gzip.open(packed, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            raise FileNotFoundError(
                f"Fashion-MNIST file {name} not found in {source} "
                "(install Debian's dataset-fashion-mnist package)"
            )
    return data_dir


def _emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)


def run(data_dir: Path, epochs: int, device_name: str, seed: int = 0) -> None:
    # Imported here: staging the data (above) and parsing arguments need no torch.
    import torch
    import torch.nn as nn
    import torchvision
    from torch.utils.data import DataLoader, random_split

    class CNN(nn.Module):
        """The notebook's network: two conv blocks and a linear head."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(1, 16, kernel_size=3, stride=1, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=2),
                nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.out = nn.Linear(32 * 7 * 7, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv(x)
            x = x.view(x.size(0), -1)
            return self.out(x)

    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device_name)
    torch.manual_seed(seed)

    transform = torchvision.transforms.ToTensor()
    root = str(data_dir)
    full_train = torchvision.datasets.FashionMNIST(root, train=True, transform=transform)
    test_dataset = torchvision.datasets.FashionMNIST(root, train=False, transform=transform)
    train_dataset, valid_dataset = random_split(
        full_train, [TRAIN_SIZE, VAL_SIZE], generator=torch.Generator().manual_seed(seed)
    )
    train_loader = DataLoader(train_dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=2)
    valid_loader = DataLoader(valid_dataset, batch_size=BATCH_SIZE, shuffle=False, num_workers=2)
    test_loader = DataLoader(test_dataset, batch_size=BATCH_SIZE, shuffle=False, num_workers=2)

    model = CNN().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    criterion = nn.CrossEntropyLoss()

    def evaluate(loader: DataLoader) -> tuple[float, float]:
        model.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        with torch.no_grad():
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                out = model(x)
                loss_sum += criterion(out, y).item() * len(y)
                correct += (out.argmax(dim=1) == y).sum().item()
                seen += len(y)
        return loss_sum / seen, correct / seen

    started = time.perf_counter()
    best_val = 0.0
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        loss_sum, seen = 0.0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            seen += len(y)
        val_loss, val_accuracy = evaluate(valid_loader)
        best_val = max(best_val, val_accuracy)
        seconds = time.perf_counter() - epoch_start
        _emit(
            {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "seconds": seconds,
                # As cnnlab reports it: training images over the whole epoch, validation included.
                "images_per_second": seen / seconds,
            }
        )
    _, test_accuracy = evaluate(test_loader)
    _emit(
        {
            "best_val_accuracy": best_val,
            "test_accuracy": test_accuracy,
            "seconds": time.perf_counter() - started,
            "device": str(device),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__)
    parser.add_argument("data_dir", type=Path, help="holds FashionMNIST/raw (torchvision layout)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    run(stage_fashion_mnist(args.data_dir), args.epochs, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
