"""Import every module in lib.nn that registers a mixer (each import adds to MIXERS).

Each mixer file appends its own import line here; a missing optional module is skipped.
"""

import importlib

_MODULES = [
    # "lib.nn.<file>" for every file that calls register_mixer
    "lib.nn.ssm.mamba",
    "lib.nn.ssm.lti",
    "lib.nn.attention.mixers",
    "lib.nn.linear_attention.mixers",
    "lib.nn.spiking.mixer",
    "lib.nn.rnn.mixers",
    "lib.nn.ssm.lmu",
    "lib.nn.conv.mixers",
]

for _name in _MODULES:
    importlib.import_module(_name)
