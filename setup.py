from setuptools import find_packages, setup

setup(
    name="objectstore",
    version="0.1.0",
    description="An S3-compatible object store and machine-image registry on Twisted",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # twisted/plugins has no __init__.py on purpose: it extends Twisted's own
    # plugin package, so `twistd objectstore` finds us once installed.
    packages=find_packages(include=["objectstore", "objectstore.*", "images", "images.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["objectstore_plugin.py"]},
    install_requires=[
        "twisted>=24.7",
        "pyOpenSSL>=24.0",
        "service_identity>=24.1",
        "cryptography>=42",
        "lxml>=5.0",
        # Imported directly (declared interfaces), not only through Twisted.
        "zope.interface>=6.0",
        # CRC32C and CRC64NVME for x-amz-checksum-* (the standard library has neither).
        "awscrt>=0.23",
        # zlib's CRC32 (the same values) with ISA-L's SIMD code: ~20x zlib's speed, so that checking
        # every byte read and written (storage/integrity.py) costs the hot path next to nothing.
        "isal>=1.6",
        # objectstore-bundle's progress bars.
        "tqdm>=4.66",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "treq>=24.9",
            "boto3>=1.35",
            "botocore>=1.35",
            "apache-libcloud>=3.8",
            # Property-based tests (tests/unit/test_listing.py).
            "hypothesis>=6.100",
            # awscli pins an exact botocore; pip picks a boto3 that agrees with it.
            "awscli>=1.36",
            # s3cmd as people configure it (README), run by the suite.
            "s3cmd>=2.4",
            "ruff>=0.6",
            # The type checker CI runs over storage/, auth/, index/, errors.py and images/ (pyproject.toml).
            "mypy>=1.10",
        ],
        # awscli: bench.bundletool's baseline.
        "bench": ["moto[server]>=5.0", "boto3>=1.35", "botocore>=1.35", "awscli>=1.36"],
    },
    entry_points={
        "console_scripts": [
            "objectstore = objectstore.cli:main",
            "objectstore-manage = objectstore.manage:main",
            "objectstore-bundle = objectstore.bundletool.cli:main",
        ],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Archiving",
    ],
)
