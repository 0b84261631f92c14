"""Evaluator service domain code: HumanML3D metrics, the Guo et al. and embedded text/motion
evaluators, event-level alignment statistics, test subsets and reports."""
