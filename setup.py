"""blindinv-jax: blind inverse problems with GAN priors, in JAX."""
import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
REQUIREMENTS = [
    line.strip() for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="blindinv-jax",
    version="0.1.0",
    description="Blind inverse problems (deblurring, edge maps, source "
                "separation) with GAN priors and learned surrogates, in JAX.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["blindinv_jax", "blindinv_jax.*"]),
    package_data={"blindinv_jax": ["assets/*.ckpt", "assets/*.json"]},
    include_package_data=True,
    install_requires=REQUIREMENTS,
    extras_require={
        "test": ["pytest==9.0.3", "hypothesis==6.155.2", "nbformat==5.11.1",
                 "nbclient==0.11.0", "ipykernel==7.4.0",
                 "ruff==0.17.6",
                 # docs/own-data.md's faces (skimage.data.lfw_subset)
                 "scikit-image==0.26.0"],
        "torch": ["torch==2.13.0"],
        # the classical inpainting baseline (baselines.inpaint_biharmonic)
        "experiments": ["scikit-image==0.26.0"],
    },
    entry_points={"console_scripts": ["blindinv=blindinv_jax.cli:main"]},
)
