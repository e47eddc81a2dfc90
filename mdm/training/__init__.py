"""Training infrastructure shared by the MDM trainer and the co-training loop."""
