"""Analysis of runs: curvature, least-squares baselines, edge of stability, figures."""
