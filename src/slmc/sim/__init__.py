"""Simulation models: RP2350 power and per-group DVFS scheduling (issue 8), and the multi-chip system
simulator (issue 7)."""
