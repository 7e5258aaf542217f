"""HappyHouse desktop side (convert). Imports TensorFlow lazily, inside functions."""
