"""Sweeps and repeated runs: grids of parameters, resumable, with group statistics."""
