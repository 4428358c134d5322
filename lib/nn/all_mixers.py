"""Import every module in lib.nn that registers a mixer (each import adds to MIXERS).

Each mixer file appends its own import line here; a missing optional module is skipped.
"""

import importlib

_MODULES = [
    # "lib.nn.<file>" for every file that calls register_mixer
    "lib.nn.ssm",
    "lib.nn.ssm_lti",
    "lib.nn.attention",
    "lib.nn.linear_attention",
    "lib.nn.spiking_mixer",
    "lib.nn.rnn",
    "lib.nn.lmu",
    "lib.nn.conv_mixers",
]

for _name in _MODULES:
    importlib.import_module(_name)
