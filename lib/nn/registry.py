"""A registry of token mixers by name, so configs can say `mixer="gla"`.

The mixer protocol (every registered module follows it):

- constructor fields include `dim: int` (model width) and optional mixer-specific fields
  with defaults; `method: str = "auto"` where the underlying op has several forms;
  `dtype` (computation dtype, None by default) and `param_dtype` (float32), as in
  `lib.nn.precision`: recurrences and states stay float32 whatever `dtype`;
- `__call__(x_BxLxD, state=None, return_state=False)` returns `y_BxLxD`, or
  `(y_BxLxD, state)` when `return_state=True`; `state` is the recurrent state (or cache)
  to start from, as made by `init_state`;
- `init_state(batch_size, dtype=jnp.float32)` returns the zero state pytree (a NamedTuple
  or array), callable as `module.apply(params, batch, method="init_state")`;
- `step(state, x_BxD)` returns `(state, y_BxD)`: one token of streaming inference, equal to
  the corresponding position of `__call__`.

Mixers are causal unless their docstring says otherwise.
"""

from collections.abc import Callable

MIXERS: dict[str, type] = {}


def register_mixer(name: str) -> Callable[[type], type]:
    """Class decorator: make a Linen module available as `get_mixer(name)`."""

    def wrap(cls: type) -> type:
        if name in MIXERS and MIXERS[name] is not cls:
            raise ValueError(f"mixer {name!r} is already registered to {MIXERS[name].__name__}")
        MIXERS[name] = cls
        return cls

    return wrap


def get_mixer(name: str) -> type:
    """Return the mixer module class registered as `name` (imports lib.nn's modules first)."""
    import lib.nn.all_mixers  # noqa: F401  (registers every mixer in lib.nn)

    if name not in MIXERS:
        raise KeyError(f"unknown mixer {name!r}; registered: {sorted(MIXERS)}")
    return MIXERS[name]
