"""Training networks: the loop, the optimisers, the loss gradients."""
