package io.cdp.bronze;

import java.time.Instant;
import java.time.ZoneId;

import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.catalyst.util.DateTimeUtils$;
import org.apache.spark.unsafe.types.UTF8String;

import scala.Option;

/**
 * {@code cdp_to_timestamp(text, zone)}: Spark's own string-to-timestamp cast, the one
 * {@code try_cast(text AS timestamp)} runs, with {@code zone} in place of the session's time zone.
 *
 * <p>So text that carries an offset or a zone keeps it, and text that carries neither is a
 * wall-clock time in {@code zone}. A time inside a daylight-saving gap moves forward by the gap,
 * and an ambiguous one takes the earlier offset (java.time's rules, as the cast's). Text that does
 * not parse is null. The zone is read as Spark reads a {@code timeZone} option
 * ({@code DateTimeUtils.getZoneId}).
 */
public final class ZonedTimestamp implements UDF2<String, String, Instant> {
    private static final long serialVersionUID = 1L;

    /** A zone's name and what it resolves to, immutable: one reference swap, safe when threads share the UDF. */
    private record Zone(String name, ZoneId id) implements java.io.Serializable {
    }

    // The zone is a literal per column: resolved once, not per row.
    private transient volatile Zone last;

    @Override
    public Instant call(String text, String zone) {
        if (text == null || zone == null) {
            return null;
        }
        Zone z = last;
        if (z == null || !z.name().equals(zone)) {
            z = new Zone(zone, DateTimeUtils$.MODULE$.getZoneId(zone));
            last = z;
        }
        Option<Object> micros = DateTimeUtils$.MODULE$.stringToTimestamp(UTF8String.fromString(text), z.id());
        if (micros.isEmpty()) {
            return null;
        }
        long us = (Long) micros.get();
        return Instant.ofEpochSecond(Math.floorDiv(us, 1_000_000L), Math.floorMod(us, 1_000_000L) * 1_000L);
    }
}
