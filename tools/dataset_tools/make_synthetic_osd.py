"""Write a synthetic SAR oil-spill dataset in OSD's layout (the embedded default; no download needed).

Example:
    python tools/dataset_tools/make_synthetic_osd.py data/synthetic_osd --num-train 200 --num-test 40
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from projects.sar_oilspill.datasets.synthetic import write_synthetic_osd  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('root', help='output folder, e.g. data/synthetic_osd')
    p.add_argument('--num-train', type=int, default=200)
    p.add_argument('--num-test', type=int, default=40)
    p.add_argument('--size', type=int, nargs=2, default=(256, 256), metavar=('H', 'W'))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--overwrite', action='store_true', help='replace a set made with other settings')
    a = p.parse_args()
    t = time.time()
    write_synthetic_osd(a.root, a.num_train, a.num_test, a.size[0], a.size[1], a.seed, a.overwrite)
    print(f'synthetic OSD-layout dataset ready at {a.root} ({a.num_train} train / {a.num_test} test, '
          f'{a.size[0]}x{a.size[1]}) in {time.time() - t:.1f} s')


if __name__ == '__main__':
    main()
