"""minigraph: a small static computation graph with automatic differentiation, built on numpy."""
