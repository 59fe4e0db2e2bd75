"""The direct path of the common cancel: a per-session request template, reply shapes
learnt once, and the lane that runs a cancel's first attempt without the chain."""
