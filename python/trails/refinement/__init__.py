"""Refinement: train the top-K archs with successive halving and keep the best."""
