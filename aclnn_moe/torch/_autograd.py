"""Backward formulas of the differentiable torch operators (filled in as the grad operators land)."""
