"""HappyHouse desktop side (convert). Imports TensorFlow lazily, inside functions."""

import os

# as in happyhouse.train: TensorFlow's C++ start-up lines came before a tool's one
# error line. Set before TensorFlow is imported; 0 shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
