"""Thin Hydra entry points; each delegates to one function of its stage."""
