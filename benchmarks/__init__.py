"""Measurements of kerasapps (speed and accuracy on real data); never run by the tests."""
