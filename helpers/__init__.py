"""Shared helpers of the course notebooks: runtime, data, plot, train, evaluate, checks, student."""
