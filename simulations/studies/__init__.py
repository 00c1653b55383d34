"""The studies: [YZ]'s figures 1-5, trained attention (``real``), the digits training study (``train``) and
parameter sweeps (``sweep``). Each is a pure function of a frozen config built on :mod:`theory` and the engine."""
