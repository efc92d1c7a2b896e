"""The smoke job through the library and the CLI entry point, in the test session."""

from cdp_lib.smoke import run_smoke


def test_smoke(spark, lakehouse):
    result = run_smoke(spark, lakehouse)
    assert result["rows"] == [(1, "a"), (2, "B"), (3, "c")]
    assert result["version0_rows"] == 2
    assert result["components"] == [[1, 2, 3], [10, 11], [20], [30]]
    assert result["labels"] == ["customer-1", "customer-10", "customer-20", "customer-30"]
    assert spark.sql("select count(*) from ops.smoke").first()[0] == 3
