"""Neural networks shared by the papers: a registry (``registry``) and one module per family.

- ``lenet``: LeNet with GroupNorm (topology, teleportation; Fashion-MNIST)
- ``cnn``: SmallCNN with a 64-d penultimate layer, CIFAR ResNet-8/56 (collateral, certified)
- ``mlp``: multi-layer perceptrons (certified)
- ``vgg``: VGG-11 with GroupNorm (teleportation; CIFAR-10 at paper scale)

``build_model(name, n_classes=, in_channels=, image_size=, generator=)`` builds any registered one.
"""

from .registry import MODELS, build_model, model_names, register_model, seeded

__all__ = ["MODELS", "build_model", "model_names", "register_model", "seeded"]
