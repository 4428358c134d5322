"""Number formats, quantizers, calibration, MX formats, quantized scans and cells, binarization, L-Mul.

The names of `lib.ops.quant.formats` are re-exported here (e.g. `lib.ops.quant.quantize_fp`)."""

from lib.ops.quant.formats import (  # noqa: F401
    FP_FORMATS,
    default_bias,
    dequantize_int,
    fake_quant,
    fake_quant_fp,
    fp_max_value,
    int_range,
    int_scale,
    quantize_fp,
    quantize_int,
)
