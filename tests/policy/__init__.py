"""Tests of the policy pack (policy/) and the quality gates (gates/, scripts/gates.sh)."""
