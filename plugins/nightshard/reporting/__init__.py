"""Cost, estimates, metrics and the run report."""
