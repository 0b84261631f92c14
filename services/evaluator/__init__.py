"""Evaluator service domain code.

metrics    HumanML3D metrics on embeddings (R-precision, MM-Dist, FID, Diversity, MultiModality)
stats      replication statistics (mean +- 1.96 population std / sqrt(n)), paired differences
glove      GloVe word vectors + POS one-hots for the Guo et al. text encoder (safe unpickling)
guo        the Guo et al. evaluator (finest.tar), packed by length // 4 by default
embedded   a small contrastive text/motion evaluator trained on the procedural world
records    ModelSample / RealSample records, the TextMotionEvaluator interface, the metric names
subsets    per-task test subsets (integrity, temporal, frequency, general)
alignment  judge-score objective: per-task means, win/tie/lose, paired difference CI
report     evaluate(...) -> Report (JSON, Markdown, store); plots: PNG charts of a Report
"""
