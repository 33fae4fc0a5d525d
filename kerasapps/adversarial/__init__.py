"""Adversarial examples: white-box L-infinity attacks (FGSM, PGD) on any task's image model,
the task hook that says what to attack and what to score, and ``kerasapps attack``'s report.

``attacks`` holds the graph code (usable by any task, in training steps too); ``surface`` the
task hook's answer (:class:`AttackSurface`); ``robustness`` the scoring loop under a strategy,
the report, the plot and the panels.
"""
