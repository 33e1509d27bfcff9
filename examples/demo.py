"""The demo: the XOR network and the curve fit of the lecture notes, trained and printed."""

from __future__ import annotations

import curve_fit
import xor

if __name__ == "__main__":
    xor.main()
    print()
    curve_fit.main()
