"""Linen modules: linear attention: GLA, retention (RetNet), RWKV-6."""
