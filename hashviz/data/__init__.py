"""Datasets: registry of image sources and seeded splits."""
