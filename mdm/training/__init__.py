"""Training infrastructure shared by every loop: the epoch loop and resumable runs (``loop``),
checkpoints, EMA, optimisers, batch order, logs, stopping; and the MDM trainer."""
