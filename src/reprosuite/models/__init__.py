"""Neural networks shared by the papers (one module per family).

- ``lenet``: LeNet with GroupNorm (topology, teleportation; Fashion-MNIST)
- ``cnn``: SmallCNN with a 64-d penultimate layer, CIFAR ResNet-8/56 (collateral, certified)
"""
