"""HappyHouse desktop side (train). Imports TensorFlow lazily, inside functions."""

import os

# TensorFlow 2.21's oneDNN kernels corrupt the heap in the backward pass of a
# depthwise convolution on some map sizes (a 62x62 map crashes with
# "munmap_chunk(): invalid pointer"; the expression model has them). The plain
# kernels train the default model as fast (0.053 vs 0.056 s per 64-image step,
# measured here), so they are the desktop side's default; set the variable to 1
# to choose otherwise. It must be set before TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# TensorFlow's C++ start-up lines (absl's "All log messages before InitializeLog",
# cpu_feature_guard) came on stderr before a tool's one error line. Level 1 hides
# them (its INFO lines) and keeps its C++ warnings and errors; 0 shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
