"""Tests of the policy pack (policy/) and the quality gates (gates/, gates/run.py)."""
