"""HappyHouse door side: camera, face gate, int8 model, vote and latch.

Nothing in this package imports TensorFlow or Keras, and nothing touches
hardware at import time: the Pi runs it with numpy, OpenCV, a TFLite runtime
and gpiozero only.
"""

__version__ = "0.1.0"
