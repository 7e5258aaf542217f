"""HappyHouse benchmarks (``happyhouse-bench``): what one door decision costs on the code that ships.

Times the daemon's own modules; TensorFlow is imported only for the float32
and Keras comparison rows, last, and only when the training model is found.
"""
