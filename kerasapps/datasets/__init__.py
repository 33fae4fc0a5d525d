"""Datasets that ship with the core (no download): ``shapes``."""
