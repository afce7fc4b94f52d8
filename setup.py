"""Install the SAR oil-spill MMSegmentation plugin (package ``projects.sar_oilspill``).

Install torch first and keep it pinned (see README): ``pip install -e . --no-build-isolation``.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name: str):
    with open(osp.join(osp.dirname(__file__), 'requirements', name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def read_version() -> str:
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'projects', 'sar_oilspill', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='sar-oilspill',
    version=read_version(),
    description='SAR oil-spill segmentation for MMSegmentation: SAR-JointNet, DAKD and SAROSS-Net',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['projects', 'projects.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require=dict(tests=read_requirements('tests.txt')),
    license='Apache-2.0',
)
