"""
Maps of frames and motion
=========================

Interpolate the bundled synthetic sea-ice translation case (polar stereographic, EPSG:3413) and
draw the result with :mod:`xlatent.plot`, on maps in the data's own CRS::

    python examples/plot_maps.py                    # fast: TV-L1 optical flow, about 1 s
    python examples/plot_maps.py --method latent    # the learned latent model (tens of seconds)

Writes ``overview.png`` (first, middle, last frame and the mean flow), ``frames.png`` (every
frame, one colour scale), ``flow.png`` (arrows over the middle frame) and ``frames.gif`` into
``--out`` (default: the current folder). The ice moves 5 km east and 3 km north in 12 hours, so
the arrows point up and to the right, about 31 degrees above east.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xlatent
import xlatent.plot
from xlatent import datasets


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="flow", help="interpolation method (default: flow, fast)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=96, help="grid cells per side of the synthetic case")
    ap.add_argument("--out", default=".")
    args = ap.parse_args(argv)

    case = datasets.translation(size=args.size, steps=args.steps)
    frames, flow = xlatent.interpolate(case.first, case.last, steps=args.steps, method=args.method, progress=False)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xlatent.plot.overview(frames, flow, path=out / "overview.png")
    xlatent.plot.frames(frames, col_wrap=5, path=out / "frames.png")
    xlatent.plot.flow(flow, frames, path=out / "flow.png")
    xlatent.plot.animate(frames, out / "frames.gif", flow=flow)
    print(f"wrote overview.png, frames.png, flow.png and frames.gif into {out.resolve()}")
    print(f"mean flow: u = {float(flow.u.mean()):.3f}, v = {float(flow.v.mean()):.3f} {flow.u.attrs['units']} "
          f"(true: {float(case.flow.u.mean()):.3f}, {float(case.flow.v.mean()):.3f})")


if __name__ == "__main__":
    main()
