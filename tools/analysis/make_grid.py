"""Draw a PNG grid of generated D_aug tiles, each next to a copy with its generated labels overlaid.

Examples:
    python tools/analysis/make_grid.py work_dirs/daug_osd --out work_dirs/daug_osd_grid.png --num 16 --ncols 4
    python tools/analysis/make_grid.py work_dirs/daug_sos --out grid.png --palette sos --alpha 0.4

The labels are the argmax of the stored logits. Palettes: ``osd`` (OSD's five class colours), ``sos`` (red for
oil, as SOS's white is invisible over SAR), ``auto`` (the manifest's palette when it has one, else by class
count). Class 0 (sea / background) is not tinted.
"""
import argparse
import os.path as osp  # noqa: E402
import sys  # noqa: E402
from typing import List, Optional  # noqa: E402

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from projects.sar_oilspill.datasets.daug import DAugFolder  # noqa: E402
from projects.sar_oilspill.evaluation.image_sets import load_daug  # noqa: E402
from projects.sar_oilspill.visualization.grid import (SOS_OVERLAY_PALETTE, default_palette,  # noqa: E402
                                                      save_daug_grid)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Grid of generated tiles with label overlays',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('daug_root', help='D_aug folder (manifest.json, images/, logits/)')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--num', type=int, default=16, help='number of samples (first in name order)')
    parser.add_argument('--ncols', type=int, default=4, help='samples per row')
    parser.add_argument('--palette', choices=['auto', 'osd', 'sos'], default='auto')
    parser.add_argument('--alpha', type=float, default=0.5, help='overlay opacity')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        manifest, samples = load_daug(args.daug_root, args.num)
        num_classes = int(manifest['num_classes'])
        if args.palette == 'osd':
            palette = default_palette(5)
        elif args.palette == 'sos':
            palette = list(SOS_OVERLAY_PALETTE)
        elif manifest.get('palette') and len(manifest['palette']) == num_classes and num_classes != 2:
            palette = [tuple(int(v) for v in c) for c in manifest['palette']]
        else:
            palette = default_palette(num_classes)
        if len(palette) < num_classes:
            raise ValueError(f'palette {args.palette!r} has {len(palette)} colours but D_aug has '
                             f'{num_classes} classes')
        save_daug_grid(DAugFolder(args.daug_root), [s['name'] for s in samples], palette, args.out,
                       ncols=args.ncols, alpha=args.alpha)
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'{len(samples)} samples -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
