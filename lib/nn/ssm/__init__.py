"""Linen modules: state-space models: Mamba's selective scan, SSD, diagonal LTI SSMs (S4D, S5, LRU), LMU."""
