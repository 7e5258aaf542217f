"""HappyHouse desktop side (train). Imports TensorFlow lazily, inside functions."""
