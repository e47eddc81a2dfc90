"""Evaluating generated motion with an independent evaluator recognizer (a small ST-GCN).

``stgcn`` the model, ``bundle`` the saved evaluator, ``train`` its training loop, ``metrics``
FID/accuracy/diversity/multimodality, ``evaluate`` the protocol with repeats and intervals.
"""
