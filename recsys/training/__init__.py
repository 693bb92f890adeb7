"""Training of the two-tower model with PyTorch Lightning and Hydra."""
