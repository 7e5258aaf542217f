"""HappyHouse desktop side (convert). Imports TensorFlow lazily, inside functions."""

import os

# as in happyhouse.train: TensorFlow's C++ start-up lines (INFO) came before a tool's
# one error line; its warnings still show. Set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
