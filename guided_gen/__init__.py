"""Guided sampling from a co-trained run, synthetic dataset writing, mixed real + synthetic retraining.

Modules: ``guidance`` (feature, classifier-free and classifier guidance; exemplar bank),
``cotrained`` (a run folder as the source of generation), ``filtering`` (confidence and
near-copy filters), ``synthesis`` (sharded, resumable synthesis into one archive), ``mixed``
(real + synthetic training data and retraining).
"""
