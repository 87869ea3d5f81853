"""cnnlab: train small CNNs on MNIST, Fashion-MNIST and CIFAR-10, from a notebook or as jobs."""

__version__ = "0.1.0"
