"""cdp_lib: a customer data platform on PySpark and Delta Lake."""

__version__ = "0.1.0"
