"""Precision marketing on top of the rules: campaign backtests as of a cut-off, a response
simulator on the synthetic world, uplift targeting and the closed adjustment loop."""
