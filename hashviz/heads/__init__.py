"""Hashing heads: a small MLP (``model.HashHead``) trained on cached backbone features with one of the
objectives in ``losses/`` (``train.fit_head_steps``)."""
