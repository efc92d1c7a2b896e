"""Package metadata for cdp_lib. Python versions are pinned to the tested runtime.

pyspark, delta-spark and the JVM jars in cdp_lib/jvm/pom.xml move together:
pyspark 4.2.0 (Spark 4.2.0, Scala 2.13, Hadoop 3.5.0) is the newest Spark that a
released Delta Lake supports (delta-spark 4.4.0 requires pyspark<=4.2.0 and ships
io.delta:delta-spark_4.2_2.13).
"""

from setuptools import find_packages, setup

setup(
    name="cdp-lakehouse",
    version="0.1.0",
    description="Customer data platform on PySpark + Delta Lake",
    python_requires=">=3.10",
    packages=find_packages(include=["cdp_lib", "cdp_lib.*"]),
    package_data={"cdp_lib": ["jvm/pom.xml", "jvm/src/**/*.java"]},
    install_requires=[
        "pyspark==4.2.0",
        "delta-spark==4.4.0",
        "pyyaml==6.0.3",
        "pydantic==2.14.4",
        "boto3==1.43.11",
        "phonenumbers==9.0.43",
        "email-validator==2.4.0",
        "rapidfuzz==3.14.6",  # Jaro-Winkler for the identity probabilistic tier
        # Connected components on the driver (identity graphs up to local_components_max_edges):
        # edges collected as Arrow, labelled by SciPy's compiled csgraph. (No pandas: with pandas
        # and pyarrow both present Spark switches every Python UDF to its Arrow path.)
        "numpy==2.4.6",
        "pyarrow==26.0.1",
        "scipy==1.17.1",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "chispa==0.12.0",
            "moto[server]==5.2.5",
            "ruff==0.17.6",
            # Loads the generated DAG in tests (installs cleanly beside pyspark 4.2.0).
            "apache-airflow==3.3.2",
            # Executes notebooks/01_customer_360.ipynb in tests.
            "nbclient==0.11.0",
            "nbformat==5.11.1",
            "ipykernel==7.4.0",
            "matplotlib==3.11.2",
        ],
    },
    entry_points={"console_scripts": ["cdp=cdp_lib.cli:main"]},
)
