package io.cdp.silver;

import org.apache.spark.sql.api.java.UDF1;

/** {@link Text#clean} as a deterministic Spark UDF ({@code cdp_clean_string}, registered per session). */
public final class CleanString implements UDF1<String, String> {
    private static final long serialVersionUID = 1L;

    @Override
    public String call(String value) {
        return Text.clean(value);
    }
}
