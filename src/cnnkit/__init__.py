"""cnnkit: convolutional neural networks from the convolution up.

Capabilities live in sub-packages named after them:

- ``cnnkit.conv``   NumPy reference engine (conv2d, pooling, forward/backward, layers)
- ``cnnkit.edges``  edge detection kernels and ``detect``
- ``cnnkit.models`` LeNet-5, AlexNet, VGG, ResNet; summary tables; checkpoint loading
- ``cnnkit.train``  classification training on image folders or scikit-learn's digits
- ``cnnkit.face``   face detection, alignment, encoding, verification and identification
- ``cnnkit.style``  neural style transfer
- ``cnnkit.io``     images in and out

Nothing heavy is imported here: ``import cnnkit`` is cheap.
"""

__version__ = "0.1.0"
